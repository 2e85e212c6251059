package cluster

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func validCommand() *Command {
	return &Command{
		Version: CommandVersion,
		ID:      "2f1d7c1e-9a57-4c1b-8a35-5b0c4d1b7e90",
		Op:      OpCreateUser,
		Node:    "n1",
		Time:    1_700_000_000_000_000_000,
		Payload: json.RawMessage(`{"CollectionId":"staff","UserId":"alice"}`),
	}
}

func TestCommandRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		cmd  func(*Command)
	}{
		{"create user", func(*Command) {}},
		{"barrier", func(c *Command) { c.Op, c.Payload = OpBarrier, nil }},
		{"empty object payload", func(c *Command) { c.Op, c.Payload = OpDeleteCollection, json.RawMessage(`{}`) }},
		// The payload's bytes travel as they are: no HTML escaping of <, >,
		// & or U+2028 on the way into the log.
		{"html and line separators in the payload", func(c *Command) {
			c.Payload = json.RawMessage("{\"UserId\":\"a&b<c>\u2028\u2029\",\"&\":null}")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCommand()
			tt.cmd(c)
			b, err := c.MarshalBinary()
			require.NoError(t, err)
			got, err := DecodeCommand(b)
			require.NoError(t, err)
			assert.Equal(t, c, got)
		})
	}
}

func TestCommandValidate(t *testing.T) {
	tests := []struct {
		name string
		cmd  func(*Command)
		want error
	}{
		{"version 0", func(c *Command) { c.Version = 0 }, ErrInvalidCommand},
		{"newer version", func(c *Command) { c.Version = CommandVersion + 1 }, ErrUnsupportedVersion},
		{"no ID", func(c *Command) { c.ID = "" }, ErrInvalidCommand},
		{"ID with a space", func(c *Command) { c.ID = "a b" }, ErrInvalidCommand},
		{"ID too long", func(c *Command) { c.ID = strings.Repeat("a", 129) }, ErrInvalidCommand},
		{"unknown op", func(c *Command) { c.Op = "SearchUsers" }, ErrInvalidCommand},
		{"no node", func(c *Command) { c.Node = "" }, ErrInvalidCommand},
		{"zero time", func(c *Command) { c.Time = 0 }, ErrInvalidCommand},
		{"negative time", func(c *Command) { c.Time = -1 }, ErrInvalidCommand},
		{"barrier with payload", func(c *Command) { c.Op = OpBarrier }, ErrInvalidCommand},
		{"no payload", func(c *Command) { c.Payload = nil }, ErrInvalidCommand},
		{"array payload", func(c *Command) { c.Payload = json.RawMessage(`[1]`) }, ErrInvalidCommand},
		{"broken payload", func(c *Command) { c.Payload = json.RawMessage(`{"a":`) }, ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validCommand()
			tt.cmd(c)
			require.ErrorIs(t, c.Validate(), tt.want)
			_, err := c.MarshalBinary()
			require.ErrorIs(t, err, tt.want, "nothing invalid is published")
		})
	}
}

func TestCommandValidateReportsEveryProblem(t *testing.T) {
	err := (&Command{Version: CommandVersion, Op: "Nope"}).Validate()
	require.ErrorIs(t, err, ErrInvalidCommand)
	for _, want := range []string{"id", "unknown op", "node", "time"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestDecodeCommandRejects(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"empty", ``, ErrInvalidCommand},
		{"not an object", `[1]`, ErrInvalidCommand},
		{"unknown field", `{"v":1,"id":"x","op":"Barrier","node":"n","time":1,"extra":1}`, ErrInvalidCommand},
		{"trailing data", `{"v":1,"id":"x","op":"Barrier","node":"n","time":1} {}`, ErrInvalidCommand},
		{"trailing brace", `{"v":1,"id":"x","op":"Barrier","node":"n","time":1}}`, ErrInvalidCommand},
		{"time as string", `{"v":1,"id":"x","op":"Barrier","node":"n","time":"1"}`, ErrInvalidCommand},
		{"no version", `{"id":"x","op":"Barrier","node":"n","time":1}`, ErrInvalidCommand},
		{"newer version with new fields", `{"v":9,"id":"x","op":"Split","shard":3}`, ErrUnsupportedVersion},
		{"too large", `{"v":1,"id":"x","op":"CreateUser","node":"n","time":1,"payload":{"a":"` + strings.Repeat("a", MaxCommandSize) + `"}}`, ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeCommand([]byte(tt.data))
			require.ErrorIs(t, err, tt.want)
		})
	}
}

func TestDecodeCommandCompactsPayload(t *testing.T) {
	got, err := DecodeCommand([]byte(`{"v":1,"id":"x","op":"CreateUser","node":"n","time":1,"payload":{ "UserId" : "a" }}`))
	require.NoError(t, err)
	assert.JSONEq(t, `{"UserId":"a"}`, string(got.Payload))
	assert.Equal(t, `{"UserId":"a"}`, string(got.Payload))
	got, err = DecodeCommand([]byte(`{"v":1,"id":"x","op":"Barrier","node":"n","time":1,"payload":null}`))
	require.NoError(t, err)
	assert.Nil(t, got.Payload, "a null payload is no payload")
}

func TestCommandApplyTimeIsMonotone(t *testing.T) {
	c := validCommand()
	assert.Equal(t, c.Time, c.ApplyTime(c.Time-5), "a later command keeps its own time")
	assert.Equal(t, c.Time+5, c.ApplyTime(c.Time+5), "an earlier-stamped command applies at the previous time")
	assert.Equal(t, time.Unix(0, c.Time).UTC(), At(c.Time))
}

func TestCommandMarshalRejectsOversize(t *testing.T) {
	c := validCommand()
	c.Payload = json.RawMessage(`{"a":"` + strings.Repeat("a", MaxCommandSize) + `"}`)
	_, err := c.MarshalBinary()
	require.ErrorIs(t, err, ErrInvalidCommand)
}

func TestNewCommandIDIsValidAndFresh(t *testing.T) {
	a, b := NewCommandID(), NewCommandID()
	assert.NotEqual(t, a, b)
	c := validCommand()
	c.ID = a
	require.NoError(t, c.Validate())
}
