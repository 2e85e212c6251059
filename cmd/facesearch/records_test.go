package main

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeFast must answer exactly as encoding/json does, or not at all.
func checkFastDecode(t *testing.T, line string) (fast bool) {
	t.Helper()
	var slow jsonRecord
	slowErr := decodeLine([]byte(line), &slow)
	var j jsonRecord
	if !decodeFast([]byte(line), &j) {
		return false
	}
	require.NoError(t, slowErr, "decodeFast took %q, encoding/json refuses it", line)
	require.Equal(t, slow, j, "%q", line)
	return true
}

func TestDecodeFast(t *testing.T) {
	tests := []struct {
		line string
		fast bool // the fast path answers
	}{
		{`{"embedding":[0.1,-2,3e-5,1E+2,0,-0,0.5e1]}`, true},
		{` { "face_id" : "00000000-0000-4000-8000-000000000001" , "embedding" : [ 1 , 2 ] , "user_id":"a" } `, true},
		{`{"external_image_id":"x.jpg","image_id":"i","user_id":"u:1"}`, true},
		{`{}`, true},
		{`{"embedding":[]}`, true},
		{"{\t\"embedding\":\r[1]}", true},
		{`{"embedding":[1,2],"embedding":[3]}`, false}, // repeated key: encoding/json's rule
		{`{"Embedding":[1]}`, false},                   // encoding/json matches case-insensitively
		{`{"user_id":"a\"b"}`, false},
		{`{"user_id":"é"}`, false},
		{`{"user_id":null}`, false},
		{`{"embedding":null}`, false},
		{`{"embedding":[1e39]}`, false},
		{`{"embedding":[01]}`, false},
		{`{"embedding":[.5]}`, false},
		{`{"embedding":[5.]}`, false},
		{`{"embedding":[+1]}`, false},
		{`{"embedding":[1,]}`, false},
		{`{"embedding":[NaN]}`, false},
		{`{"embedding":[0x10]}`, false},
		{`{"embedding":[1]`, false},
		{`{"embedding":[1]} x`, false},
		{`{"embedding":[1],}`, false},
		{`{"nope":1}`, false},
		{`[1,2]`, false},
		{`{"user_id":"a" "face_id":"b"}`, false},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.fast, checkFastDecode(t, tc.line), "%q", tc.line)
	}
	// Export's own lines, with every float32 spelling encoding/json writes.
	r := rand.New(rand.NewPCG(1, 1))
	for range 200 {
		v := make([]float32, 1+r.IntN(40))
		for i := range v {
			v[i] = float32(r.NormFloat64() * []float64{1e-30, 1e-7, 1, 1e7, 1e30}[r.IntN(5)])
		}
		line := fmt.Sprintf(`{"face_id":"f","user_id":"u","embedding":%s}`, strings.ReplaceAll(fmt.Sprint(v), " ", ","))
		recLine, err := jsonLine(jsonRecord{FaceID: "f", UserID: "u", Embedding: v})
		require.NoError(t, err)
		require.True(t, checkFastDecode(t, recLine), recLine)
		checkFastDecode(t, line)
	}
}

func jsonLine(r jsonRecord) (string, error) {
	var b strings.Builder
	err := newRecordEncoder(&b).Encode(r)
	return strings.TrimSpace(b.String()), err
}

func FuzzDecodeFast(f *testing.F) {
	for _, s := range []string{
		`{"embedding":[0.1,-2,3e-5]}`, `{"face_id":"a","user_id":"b","external_image_id":"c","image_id":"d","embedding":[1]}`,
		`{}`, `{"embedding":[]}`, `{"embedding":[1e39]}`, `{"user_id":"a\"b"}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		checkFastDecode(t, line)
	})
}
