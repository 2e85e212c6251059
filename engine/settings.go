package engine

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/facesearch/facesearch/index"
)

// setting is one collection setting as the caller gave it: its value and
// where it came from ("Dimension" or "Tags.facesearch:dimension"), so that
// a problem is reported once, naming what the caller sent.
type setting struct {
	value, from string
	bad         bool // already reported
}

// fromTag takes a setting from its reserved tag k, which must agree with
// the field when both are given.
func (v *validator) fromTag(s *setting, k, val string) {
	if s.value != "" && s.value != val {
		v.addf("Value %s at 'Tags.%s' disagrees with %s %s", quoted(val), k, s.from, quoted(s.value))
		s.bad = true
		return
	}
	s.value, s.from = val, "Tags."+k
}

// collectionSettings checks CreateCollection's tags and the settings they
// or the input's fields give, and returns the settings.
func (v *validator) collectionSettings(in *CreateCollectionInput) (dim int, cv *curve, tier index.Tier) {
	if len(in.Tags) > maxTags {
		v.addf("Value at 'Tags' failed to satisfy constraint: Member must have length less than or equal to %d", maxTags)
	}
	dimS := setting{from: "Dimension"}
	if in.Dimension != 0 {
		dimS.value = strconv.Itoa(in.Dimension)
	}
	simS := setting{value: in.Similarity, from: "Similarity"}
	tierS := setting{value: in.Tier, from: "Tier"}
	for _, k := range slices.Sorted(maps.Keys(in.Tags)) {
		val := in.Tags[k]
		switch {
		case len(k) < 1 || len(k) > 128:
			v.addf("Value %s at 'Tags' failed to satisfy constraint: Map keys must have length between 1 and 128", quoted(k))
		case len(val) > 256:
			v.addf("Value at 'Tags.%s' failed to satisfy constraint: Member must have length less than or equal to 256", k)
		case strings.HasPrefix(k, "aws:"):
			v.addf("Value %s at 'Tags' failed to satisfy constraint: keys must not start with 'aws:'", quoted(k))
		case k == TagDimension:
			v.fromTag(&dimS, k, val)
		case k == TagSimilarity:
			v.fromTag(&simS, k, val)
		case k == TagTier:
			v.fromTag(&tierS, k, val)
		case strings.HasPrefix(k, TagPrefix):
			v.addf("Tag %s is not a facesearch setting: the reserved keys are %s, %s and %s", quoted(k), TagDimension, TagSimilarity, TagTier)
		}
	}
	if dimS.value != "" && !dimS.bad {
		n, err := strconv.Atoi(dimS.value)
		if err != nil || n < 1 || n > maxDimension {
			v.addf("Value %s at '%s' failed to satisfy constraint: Member must be an integer between 1 and %d", quoted(dimS.value), dimS.from, maxDimension)
		}
		dim = n
	}
	if simS.value == "" {
		simS.value = SimilarityArcFace
	}
	if !simS.bad {
		var err error
		if cv, err = parseCurve(simS.value); err != nil {
			v.addf("Value at '%s' failed to satisfy constraint: %v", simS.from, err)
		}
	}
	if !tierS.bad {
		var err error
		if tier, err = index.ParseTier(tierS.value); err != nil {
			v.addf("Value %s at '%s' failed to satisfy constraint: Member must be one of float32, int8, float16", quoted(tierS.value), tierS.from)
		}
	}
	return dim, cv, tier
}
