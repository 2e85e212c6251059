package bench_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/facesearch/facesearch/bench"
)

func genCos(a, b []float32) float64 {
	var dot, na, nb float64
	for k := range a {
		dot += float64(a[k]) * float64(b[k])
		na += float64(a[k]) * float64(a[k])
		nb += float64(b[k]) * float64(b[k])
	}
	return dot / math.Sqrt(na*nb)
}

func genNorm(v []float32) float64 {
	var ss float64
	for _, x := range v {
		ss += float64(x) * float64(x)
	}
	return math.Sqrt(ss)
}

func TestGenConfigDefaults(t *testing.T) {
	got := bench.NewGenerator(bench.GenConfig{}).Config()
	want := bench.GenConfig{Identities: 1000, FacesPerIdentity: 5, Dim: 512, IntraCosine: 0.7}
	if got != want {
		t.Errorf("Config() = %+v, want %+v", got, want)
	}
}

func TestGenConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  bench.GenConfig
		ok   bool
	}{
		{"zero value", bench.GenConfig{}, true},
		{"cosine 1", bench.GenConfig{IntraCosine: 1}, true},
		{"dim 2", bench.GenConfig{Dim: 2}, true},
		{"dim 1", bench.GenConfig{Dim: 1}, false},
		{"negative dim", bench.GenConfig{Dim: -5}, false},
		{"negative cosine", bench.GenConfig{IntraCosine: -0.5}, false},
		{"cosine above 1", bench.GenConfig{IntraCosine: 1.5}, false},
		{"cosine NaN", bench.GenConfig{IntraCosine: math.NaN()}, false},
		{"negative identities", bench.GenConfig{Identities: -1}, false},
		{"negative faces", bench.GenConfig{FacesPerIdentity: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
	// Validate reports every problem at once.
	err := bench.GenConfig{Dim: 1, IntraCosine: 2}.Validate()
	if n := len(err.(interface{ Unwrap() []error }).Unwrap()); n != 2 {
		t.Errorf("Validate found %d problems, want 2: %v", n, err)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("NewGenerator accepted an invalid config")
		}
	}()
	bench.NewGenerator(bench.GenConfig{Dim: 1})
}

// vectors returns one vector of each kind, for determinism checks.
func vectors(g *bench.Generator) map[string][]float32 {
	return map[string][]float32{
		"identity": g.Identity(3),
		"face":     g.Face(3, 1),
		"probe":    g.Probe(3, 0),
		"impostor": g.Impostor(0),
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	cfg := bench.GenConfig{Dim: 64, Seed: 42}
	a, b := vectors(bench.NewGenerator(cfg)), vectors(bench.NewGenerator(cfg))
	cfg.Seed = 43
	other := vectors(bench.NewGenerator(cfg))
	for kind := range a {
		if !slices.Equal(a[kind], b[kind]) {
			t.Errorf("%s: same seed gave different vectors", kind)
		}
		if slices.Equal(a[kind], other[kind]) {
			t.Errorf("%s: seeds 42 and 43 gave the same vector", kind)
		}
	}

	// Order and concurrency do not matter: each vector is a function of its indices.
	g := bench.NewGenerator(bench.GenConfig{Dim: 64, Seed: 42})
	want := g.Faces(7)
	got := make([][]float32, len(want))
	done := make(chan struct{})
	for j := range got {
		go func() {
			defer func() { done <- struct{}{} }()
			_ = g.Face(j+100, j) // interleave other work
			got[j] = g.Face(7, j)
		}()
	}
	for range got {
		<-done
	}
	for j := range want {
		if !slices.Equal(got[j], want[j]) {
			t.Errorf("Face(7, %d) differs from Faces(7)[%d]", j, j)
		}
	}
}

func TestGeneratorDistinct(t *testing.T) {
	g := bench.NewGenerator(bench.GenConfig{Dim: 32, FacesPerIdentity: 4})
	seen := map[string]string{}
	add := func(name string, v []float32) {
		key := fmt.Sprint(v)
		if prev, dup := seen[key]; dup {
			t.Errorf("%s equals %s", name, prev)
		}
		seen[key] = name
	}
	for i := range 5 {
		add(fmt.Sprintf("Identity(%d)", i), g.Identity(i))
		for j := range 4 {
			add(fmt.Sprintf("Face(%d, %d)", i, j), g.Face(i, j))
		}
		for s := range 4 {
			add(fmt.Sprintf("Probe(%d, %d)", i, s), g.Probe(i, s))
		}
		add(fmt.Sprintf("Impostor(%d)", i), g.Impostor(i))
	}
}

func TestGeneratorGeometry(t *testing.T) {
	for _, tc := range []struct {
		dim   int
		intra float64
	}{{2, 0.7}, {3, 0.5}, {128, 0.7}, {512, 0.7}, {512, 0.35}, {512, 1}, {4096, 0.8}} {
		t.Run(fmt.Sprintf("dim=%d/intra=%v", tc.dim, tc.intra), func(t *testing.T) {
			g := bench.NewGenerator(bench.GenConfig{Dim: tc.dim, IntraCosine: tc.intra, FacesPerIdentity: 3, Seed: 7})
			for i := range 20 {
				centre := g.Identity(i)
				all := append(g.Faces(i), g.Probe(i, 0), g.Probe(i, 1), g.Impostor(i), centre)
				for k, v := range all {
					if len(v) != tc.dim {
						t.Fatalf("identity %d vector %d has length %d", i, k, len(v))
					}
					if n := genNorm(v); math.Abs(n-1) > 1e-5 {
						t.Errorf("identity %d vector %d has norm %v", i, k, n)
					}
				}
				for k, v := range all[:5] { // faces and probes
					if c := genCos(v, centre); math.Abs(c-tc.intra) > 1e-4 {
						t.Errorf("identity %d vector %d: cosine to centre %v, want %v", i, k, c, tc.intra)
					}
				}
			}
		})
	}
}

// The statistics the benchmark relies on: faces of one identity are close,
// everything else is far.
func TestGeneratorStatistics(t *testing.T) {
	const dim, intra, ids = 512, 0.7, 200
	g := bench.NewGenerator(bench.GenConfig{Dim: dim, IntraCosine: intra, FacesPerIdentity: 2, Seed: 1})
	var sameSum float64
	var worstUnrelated float64
	for i := range ids {
		f := g.Faces(i)
		sameSum += genCos(f[0], f[1])
		for _, c := range []float64{
			genCos(g.Identity(i), g.Identity(i+1)),
			genCos(f[0], g.Face(i+1, 0)),
			genCos(g.Probe(i, 0), g.Impostor(i)),
			genCos(g.Identity(i), g.Impostor(i)),
		} {
			worstUnrelated = max(worstUnrelated, math.Abs(c))
		}
	}
	// Two faces of one identity: cos = intra² + (1-intra²)·n1·n2 with n1·n2
	// of mean 0 and sd about 1/sqrt(dim), so the mean over 200 pairs is
	// within ~0.002 of intra².
	if mean := sameSum / ids; math.Abs(mean-intra*intra) > 0.01 {
		t.Errorf("mean cosine between faces of one identity = %v, want about %v", mean, intra*intra)
	}
	// Unrelated unit vectors: sd 1/sqrt(512) = 0.044, so 0.25 is over 5 sd.
	if worstUnrelated > 0.25 {
		t.Errorf("largest |cosine| between unrelated vectors = %v, want < 0.25", worstUnrelated)
	}
}

func ExampleGenerator() {
	g := bench.NewGenerator(bench.GenConfig{Dim: 512, IntraCosine: 0.7, Seed: 1})
	cos := func(a, b []float32) (dot float32) {
		for k := range a {
			dot += a[k] * b[k]
		}
		return dot
	}
	fmt.Printf("face to its centre: %.3f\n", cos(g.Face(0, 0), g.Identity(0)))
	fmt.Printf("probe to its centre: %.3f\n", cos(g.Probe(0, 1), g.Identity(0)))
	fmt.Printf("unrelated identities: %.1f\n", math.Abs(float64(cos(g.Identity(0), g.Identity(1)))))
	// Output:
	// face to its centre: 0.700
	// probe to its centre: 0.700
	// unrelated identities: 0.0
}

func BenchmarkFace(b *testing.B) {
	for _, dim := range []int{128, 512, 1024} {
		b.Run(fmt.Sprintf("dim=%d", dim), func(b *testing.B) {
			g := bench.NewGenerator(bench.GenConfig{Dim: dim})
			b.SetBytes(int64(4 * dim))
			i := 0
			for b.Loop() {
				_ = g.Face(i, i%5)
				i++
			}
		})
	}
}
