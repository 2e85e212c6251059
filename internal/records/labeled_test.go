package records

import (
	"encoding/json"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// checkLabeled: DecodeLabeled answers as encoding/json does, into a
// Labeled that held a longer line before (its array is reused), and
// reports whether the fast parser answered.
func checkLabeled(t *testing.T, line string) (l Labeled, fast bool, err error) {
	t.Helper()
	var slow Labeled
	slowErr := decodeLabeledStrict([]byte(line), &slow)
	require.NoError(t, DecodeLabeled([]byte(`{"identity":"before","embedding":[9,9,9,9,9,9,9,9]}`), &l))
	err = DecodeLabeled([]byte(line), &l)
	require.Equal(t, slowErr == nil, err == nil, "%q: %v against encoding/json's %v", line, err, slowErr)
	require.Equal(t, slow, l, "%q", line)
	var f Labeled
	return l, decodeLabeledFast([]byte(line), &f), err
}

func TestDecodeLabeled(t *testing.T) {
	tests := []struct {
		line     string
		identity string // "" for an error
		fast     bool   // the fast parser answers
	}{
		{`{"identity":"alice","embedding":[0.5,-1,3e-5]}`, "alice", true},
		{` { "embedding" : [ 1 , 2 ] , "identity" : "b c" } `, "b c", true},
		{`{"identity":7,"embedding":[1]}`, "7", true},
		{`{"identity":-1.50e+2,"embedding":[1]}`, "-1.50e+2", true},
		{`{"identity":"a","path":"x.jpg","n":3,"ok":true,"no":false,"z":null,"path":"y","embedding":[1]}`, "a", true},
		{`{"identity":"a","embedding":[1],"box":[1,2]}`, "a", false},    // a skipped array
		{`{"identity":"a","embedding":[1],"meta":{"k":1}}`, "a", false}, // a skipped object
		{`{"Identity":"a","EMBEDDING":[1]}`, "a", false},                // encoding/json folds case
		{`{"identity":"a","identity":"b","embedding":[1]}`, "b", false}, // the last repeat wins
		{`{"identity":"caf\u00e9","embedding":[1]}`, "café", false},     // an escape
		{`{"identity":"café","embedding":[1]}`, "café", false},          // not ASCII
		{`{"identity":"a","embedding":[1e-400]}`, "a", true},            // underflows to 0
		{`{"identity":"","embedding":[1]}`, "", false},
		{`{"identity":null,"embedding":[1]}`, "", false},
		{`{"identity":true,"embedding":[1]}`, "", false},
		{`{"embedding":[1]}`, "", false},
		{`{"identity":"a"}`, "", false},
		{`{"identity":"a","embedding":[]}`, "", false},
		{`{"identity":"a","embedding":null}`, "", false},
		{`{"identity":"a","embedding":[1e400]}`, "", false},
		{`{"identity":"a","embedding":[01]}`, "", false},
		{`{"identity":"a","embedding":[1],}`, "", false},
		{`{"identity":"a","embedding":[1],`, "", false},
		{`{"identity":"a","embedding":[1]} x`, "", false},
		{`{"identity":"a","x":nullx,"embedding":[1]}`, "", false},
		{`{"identity":012,"embedding":[1]}`, "", false},
		{`{}`, "", false},
		{`[1]`, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			l, fast, err := checkLabeled(t, tt.line)
			require.Equal(t, tt.fast, fast, "the fast parser answers")
			if tt.identity == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.identity, l.Identity)
			require.NotEmpty(t, l.Embedding)
		})
	}
}

// FuzzDecodeLabeled: whatever the line, DecodeLabeled answers as
// encoding/json does, and never panics.
func FuzzDecodeLabeled(f *testing.F) {
	for _, s := range []string{
		`{"identity":"alice","embedding":[0.5,-1,3e-5]}`, `{"identity":7,"embedding":[1],"path":"p"}`,
		`{"Identity":"a","embedding":[1]}`, `{"identity":"a","x":true,"embedding":[1]}`, `{}`, `{"identity":"","embedding":[1]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		checkLabeled(t, line)
	})
}

// BenchmarkDecodeLabeled: reading the labeled set is most of what eval
// does besides scoring.
func BenchmarkDecodeLabeled(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 512)
	for i := range v {
		v[i] = float32(r.NormFloat64() / 22.6)
	}
	line, err := json.Marshal(map[string]any{"identity": "person-1", "path": "a/b.jpg", "embedding": v})
	require.NoError(b, err)
	for _, impl := range []struct {
		name   string
		decode func([]byte, *Labeled) error
	}{
		{"fast", DecodeLabeled},
		{"encoding-json", decodeLabeledStrict},
	} {
		b.Run(impl.name, func(b *testing.B) {
			b.SetBytes(int64(len(line)))
			for b.Loop() {
				var l Labeled
				if err := impl.decode(line, &l); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
