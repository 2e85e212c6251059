package bench

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
)

// GenConfig describes a synthetic data set of face embeddings. The zero
// value of each field selects its default.
type GenConfig struct {
	// Identities is the number of identities (users) in the data set;
	// identities are numbered 0 to Identities-1. The default value is 1000.
	Identities int
	// FacesPerIdentity is the number of enrolled faces per identity, numbered
	// 0 to FacesPerIdentity-1. The default value is 5.
	FacesPerIdentity int
	// Dim is the embedding dimension, at least 2 so a face can differ from
	// its identity's centre. The default value is 512 (ArcFace).
	Dim int
	// IntraCosine is the exact cosine between every face and its identity's
	// centre, in (0, 1]; two faces of one identity then average
	// IntraCosine², and unrelated vectors average 0. The default value is 0.7.
	IntraCosine float64
	// Seed selects the data set: the same Seed gives the same vectors on
	// every run (bit for bit on one architecture). The default value is 0.
	Seed int64
}

// withDefaults returns c with zero fields set to their defaults.
func (c GenConfig) withDefaults() GenConfig {
	if c.Identities == 0 {
		c.Identities = 1000
	}
	if c.FacesPerIdentity == 0 {
		c.FacesPerIdentity = 5
	}
	if c.Dim == 0 {
		c.Dim = 512
	}
	if c.IntraCosine == 0 {
		c.IntraCosine = 0.7
	}
	return c
}

// Validate reports every problem with c (after defaults) at once.
func (c GenConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Identities < 0 {
		errs = append(errs, fmt.Errorf("bench: Identities is %d, want at least 1", c.Identities))
	}
	if c.FacesPerIdentity < 0 {
		errs = append(errs, fmt.Errorf("bench: FacesPerIdentity is %d, want at least 1", c.FacesPerIdentity))
	}
	if c.Dim < 2 {
		errs = append(errs, fmt.Errorf("bench: Dim is %d, want at least 2", c.Dim))
	}
	if !(c.IntraCosine > 0 && c.IntraCosine <= 1) {
		errs = append(errs, fmt.Errorf("bench: IntraCosine is %v, want a value in (0, 1]", c.IntraCosine))
	}
	return errors.Join(errs...)
}

// Generator produces a synthetic data set of face-like embeddings: each
// identity is a random unit vector (its centre), and each face of it is a
// unit vector at exactly [GenConfig.IntraCosine] from that centre in a random
// direction. Random Gaussian directions make unrelated identities nearly
// orthogonal in high dimension, as real embeddings of different people are.
//
// Every vector is a pure function of the seed and its indices, so any part
// of the data set can be generated alone, in any order, in parallel. A
// Generator is safe for concurrent use.
type Generator struct {
	cfg GenConfig
}

// NewGenerator returns a generator for cfg, with defaults applied. It panics
// if cfg is invalid (see [GenConfig.Validate]): a data set definition is
// fixed by the program, not by its input.
func NewGenerator(cfg GenConfig) *Generator {
	if err := cfg.Validate(); err != nil {
		panic(err)
	}
	return &Generator{cfg: cfg.withDefaults()}
}

// Config returns the generator's configuration with defaults applied.
func (g *Generator) Config() GenConfig { return g.cfg }

// Streams of randomness are separated by kind, so a probe can never repeat
// an enrolled face and an impostor can never be an identity centre.
const (
	genKindCentre uint64 = iota + 1
	genKindFace
	genKindProbe
	genKindImpostor
)

// Identity returns the unit centre of identity i.
func (g *Generator) Identity(i int) []float32 {
	return genToFloat32(g.centre(i))
}

// Face returns the j-th enrolled face of identity i.
func (g *Generator) Face(i, j int) []float32 {
	return genToFloat32(g.around(g.centre(i), genKindFace, i, j))
}

// Faces returns the enrolled faces of identity i, [Generator.Face](i, j) for
// j from 0 to FacesPerIdentity-1, computing the centre once.
func (g *Generator) Faces(i int) [][]float32 {
	c := g.centre(i)
	faces := make([][]float32, g.cfg.FacesPerIdentity)
	for j := range faces {
		faces[j] = genToFloat32(g.around(c, genKindFace, i, j))
	}
	return faces
}

// Probe returns a fresh face of identity i, a genuine query: at
// IntraCosine from the centre like the enrolled faces, but none of them.
// Different salts give different probes.
func (g *Generator) Probe(i int, salt int) []float32 {
	return genToFloat32(g.around(g.centre(i), genKindProbe, i, salt))
}

// Impostor returns a random unit vector unrelated to any identity, an
// impostor query. Different salts give different impostors.
func (g *Generator) Impostor(salt int) []float32 {
	return genToFloat32(g.unit(g.rand(genKindImpostor, salt, 0)))
}

func (g *Generator) centre(i int) []float64 {
	return g.unit(g.rand(genKindCentre, i, 0))
}

// around returns normalize(c*centre + sqrt(1-c²)*n), with n a random unit
// vector orthogonalized against centre, so its cosine to centre is exactly c
// whatever n is.
func (g *Generator) around(centre []float64, kind uint64, a, b int) []float64 {
	r := g.rand(kind, a, b)
	c := g.cfg.IntraCosine
	s := math.Sqrt(1 - c*c)
	for {
		n := g.gaussian(r)
		var dot float64
		for k := range n {
			dot += n[k] * centre[k]
		}
		for k := range n {
			n[k] -= dot * centre[k]
		}
		if genNormalize(n) {
			for k := range n {
				n[k] = c*centre[k] + s*n[k]
			}
			genNormalize(n) // only corrects rounding
			return n
		}
		// The draw was (numerically) parallel to the centre: draw again.
	}
}

func (g *Generator) unit(r *rand.Rand) []float64 {
	for {
		v := g.gaussian(r)
		if genNormalize(v) {
			return v
		}
	}
}

func (g *Generator) gaussian(r *rand.Rand) []float64 {
	v := make([]float64, g.cfg.Dim)
	for k := range v {
		v[k] = r.NormFloat64()
	}
	return v
}

// rand returns the random stream for (Seed, kind, a, b). The inputs are
// chained through a 64-bit mixer so nearby indices give unrelated streams.
func (g *Generator) rand(kind uint64, a, b int) *rand.Rand {
	h := genMix(uint64(g.cfg.Seed) ^ 0x9e3779b97f4a7c15)
	h = genMix(h ^ kind)
	h = genMix(h ^ uint64(a))
	h2 := genMix(h ^ uint64(b))
	return rand.New(rand.NewPCG(h, h2))
}

// genMix is the SplitMix64 finalizer, a bijection with good avalanche.
func genMix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// genNormalize scales v to unit length, reporting false if v is too short
// to have a direction.
func genNormalize(v []float64) bool {
	var ss float64
	for _, x := range v {
		ss += x * x
	}
	if ss < 1e-20 {
		return false
	}
	inv := 1 / math.Sqrt(ss)
	for k := range v {
		v[k] *= inv
	}
	return true
}

func genToFloat32(v []float64) []float32 {
	out := make([]float32, len(v))
	for k, x := range v {
		out[k] = float32(x)
	}
	return out
}
