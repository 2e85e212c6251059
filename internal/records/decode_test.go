package records

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkFastDecode: decodeFast must answer exactly as encoding/json does,
// or not at all.
func checkFastDecode(t *testing.T, line string) (fast bool) {
	t.Helper()
	var slow JSON
	slowErr := decodeStrict([]byte(line), &slow)
	var j JSON
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
		recLine, err := jsonLine(JSON{FaceID: "f", UserID: "u", Embedding: v})
		require.NoError(t, err)
		require.True(t, checkFastDecode(t, recLine), recLine)
		checkFastDecode(t, line)
	}
}

func jsonLine(r JSON) (string, error) {
	var b strings.Builder
	err := NewEncoder(&b).Encode(r)
	return strings.TrimSpace(b.String()), err
}

// TestDecode: what a person fixing a file reads for each kind of mistake.
func TestDecode(t *testing.T) {
	tests := []struct {
		line string
		want JSON
		err  string // empty: no error
	}{
		{line: `{"user_id":"a","embedding":[1,2]}`, want: JSON{UserID: "a", Embedding: []float32{1, 2}}},
		{line: `{"user_id":"a\u0062"}`, want: JSON{UserID: "ab"}}, // the slow path
		{line: `{"embeding":[1]}`, err: `unknown field "embeding" (the fields are embedding, external_image_id, user_id, face_id, image_id, bounding_box)`},
		{line: `{"embedding":[1,"x"]}`, err: `field "embedding": string is not a float32`},
		{line: `{"embedding":[1e39]}`, err: `field "embedding": number 1e39 is not a float32`},
		{line: `[1]`, err: `want a JSON object, got array`},
		{line: `{"embedding":[1]`, err: `not valid JSON: the object is cut short`},
		{line: `{"embedding":[1]} {}`, err: `unexpected data after the JSON object: want one object per line`},
		{line: `{"embedding":[1,]}`, err: `not valid JSON at column 17: invalid character ']' looking for beginning of value`},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			var j JSON
			err := Decode([]byte(tt.line), &j)
			if tt.err != "" {
				require.Error(t, err)
				assert.Equal(t, tt.err, err.Error())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, j)
		})
	}
}

// FuzzDecode: whatever the line, Decode answers as a strict
// encoding/json decode does, and never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"embedding":[0.1,-2,3e-5]}`, `{"face_id":"a","user_id":"b","external_image_id":"c","image_id":"d","embedding":[1]}`,
		`{}`, `{"embedding":[]}`, `{"embedding":[1e39]}`, `{"user_id":"a\"b"}`, `{"embedding":[1]} x`, `[1]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var got, want JSON
		err := Decode([]byte(line), &got)
		wantErr := decodeStrict([]byte(line), &want)
		require.Equal(t, wantErr == nil, err == nil, "%q: %v against encoding/json's %v", line, err, wantErr)
		if err == nil {
			require.Equal(t, want, got, "%q", line)
		}
	})
}

// BenchmarkDecode is why decodeFast exists: parsing numbers is most of an
// import's work, and encoding/json's reflection-driven walk takes several
// times as long over the lines export writes.
func BenchmarkDecode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 512)
	for i := range v {
		v[i] = float32(r.NormFloat64() / 22.6)
	}
	line, err := json.Marshal(JSON{FaceID: "00000000-0000-4000-8000-000000000001", UserID: "person-1", ExternalImageID: "a.jpg", Embedding: v})
	require.NoError(b, err)
	for _, impl := range []struct {
		name   string
		decode func([]byte, *JSON) error
	}{
		{"fast", Decode},
		{"encoding-json", func(b []byte, j *JSON) error { return decodeStrict(b, j) }},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				var j JSON
				if err := impl.decode(line, &j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
