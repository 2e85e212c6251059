package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"slices"
	"time"

	"github.com/google/uuid"
)

// CommandVersion is the envelope version this node writes and the only one
// it reads. A node that meets a higher version stops applying
// ([ErrUnsupportedVersion]) rather than guess.
const CommandVersion = 1

// MaxCommandSize bounds an encoded command. It matches the HTTP server's
// request limit; NATS must accept payloads this large (the embedded node sets
// its max_payload to it, an external cluster must be configured so).
const MaxCommandSize = 8 << 20

// Operations a command carries: the mutating Rekognition operations, and
// OpBarrier, the no-op a linearizable read publishes and waits for.
const (
	OpCreateCollection  = "CreateCollection"
	OpDeleteCollection  = "DeleteCollection"
	OpIndexFaces        = "IndexFaces"
	OpDeleteFaces       = "DeleteFaces"
	OpCreateUser        = "CreateUser"
	OpDeleteUser        = "DeleteUser"
	OpAssociateFaces    = "AssociateFaces"
	OpDisassociateFaces = "DisassociateFaces"
	OpBarrier           = "Barrier"
)

var knownOps = []string{
	OpCreateCollection, OpDeleteCollection, OpIndexFaces, OpDeleteFaces,
	OpCreateUser, OpDeleteUser, OpAssociateFaces, OpDisassociateFaces, OpBarrier,
}

// Command IDs double as JetStream's Nats-Msg-Id, and node names are NATS
// server names: both are short tokens without spaces or subject wildcards.
var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9_.:\-]{1,128}$`)

// Command is one entry of the replicated log: a mutation (or a read barrier)
// with everything its apply needs decided before it was published, so that
// every node computes the same outcome from it.
type Command struct {
	// Version is the envelope version, [CommandVersion].
	Version int `json:"v"`
	// ID identifies the command across retries: it is the Nats-Msg-Id
	// JetStream deduplicates on, and the key under which the apply keeps the
	// command's outcome.
	ID string `json:"id"`
	// Op is the operation, one of the Op constants.
	Op string `json:"op"`
	// Node is the name of the node that took the request.
	Node string `json:"node"`
	// Time is the issuing node's clock when it took the request, in Unix
	// nanoseconds, from a [Clock]. The apply uses it (through
	// [Command.ApplyTime]) and never reads a clock itself.
	Time int64 `json:"time"`
	// Payload is the operation's request as JSON, with every random ID the
	// operation needs already chosen. Empty for OpBarrier.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// NewCommandID returns a fresh random command ID.
func NewCommandID() string { return uuid.NewString() }

// Validate reports every problem of c at once, wrapping [ErrInvalidCommand].
func (c *Command) Validate() error {
	if c.Version > CommandVersion {
		return unsupported(c.Version)
	}
	var list []string
	if c.Version != CommandVersion {
		list = append(list, fmt.Sprintf("version %d must be %d", c.Version, CommandVersion))
	}
	if !tokenPattern.MatchString(c.ID) {
		list = append(list, fmt.Sprintf("id %q must match %s", c.ID, tokenPattern))
	}
	if !slices.Contains(knownOps, c.Op) {
		list = append(list, fmt.Sprintf("unknown op %q", c.Op))
	}
	if !tokenPattern.MatchString(c.Node) {
		list = append(list, fmt.Sprintf("node %q must match %s", c.Node, tokenPattern))
	}
	if c.Time <= 0 {
		list = append(list, fmt.Sprintf("time %d must be positive", c.Time))
	}
	switch {
	case c.Op == OpBarrier && len(c.Payload) != 0:
		list = append(list, "a barrier carries no payload")
	case c.Op != OpBarrier && c.Op != "" && !isJSONObject(c.Payload):
		list = append(list, fmt.Sprintf("%s needs a JSON object payload", c.Op))
	}
	return problems(ErrInvalidCommand, "command "+c.ID, list)
}

func unsupported(v int) error {
	return fmt.Errorf("%w: version %d, this node reads %d", ErrUnsupportedVersion, v, CommandVersion)
}

func isJSONObject(b json.RawMessage) bool {
	b = bytes.TrimSpace(b)
	return len(b) >= 2 && b[0] == '{' && json.Valid(b)
}

// MarshalBinary validates c and encodes it for the log.
func (c *Command) MarshalBinary() ([]byte, error) {
	if len(c.Payload) > MaxCommandSize {
		return nil, fmt.Errorf("%w: command %s has a %d-byte payload, over the %d limit", ErrInvalidCommand, c.ID, len(c.Payload), MaxCommandSize)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	// json.Marshal would HTML-escape the payload's <, >, & and U+2028/9, so
	// the payload a node decodes would differ from the one it was given.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: command %s is %d bytes, over the %d limit", ErrInvalidCommand, c.ID, len(b), MaxCommandSize)
	}
	return b, nil
}

// DecodeCommand decodes and validates a command read from the log. The bytes
// come from another node (or anyone allowed to publish on the subject), so
// nothing is trusted: size, version, unknown fields, trailing data and every
// field are checked. The payload is returned compacted.
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %d bytes, over the %d limit", ErrInvalidCommand, len(b), MaxCommandSize)
	}
	// The version is read leniently first, so that a newer envelope is
	// reported as such rather than as unknown fields.
	var probe struct {
		Version int `json:"v"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	if probe.Version > CommandVersion {
		return nil, unsupported(probe.Version)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var c Command
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidCommand, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the command", ErrInvalidCommand)
	}
	if len(c.Payload) > 0 {
		if string(c.Payload) == "null" {
			c.Payload = nil
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, c.Payload); err != nil {
				return nil, fmt.Errorf("%w: payload: %v", ErrInvalidCommand, err)
			}
			c.Payload = buf.Bytes()
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// ApplyTime is the time the apply of c uses, given the time the previous
// command applied with: the command's own time, but never earlier than prev.
// Commands from several nodes reach the log in an order their clocks need not
// follow; this keeps the applied times monotone in log order on every node.
func (c *Command) ApplyTime(prev int64) int64 { return max(prev, c.Time) }

// At returns t, Unix nanoseconds, as a UTC time.
func At(t int64) time.Time { return time.Unix(0, t).UTC() }
