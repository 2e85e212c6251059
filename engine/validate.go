package engine

import (
	"fmt"
	"slices"
	"strings"

	"github.com/facesearch/facesearch/internal/vector"
)

// Constraints from Rekognition's service model.
const (
	maxCollectionIDLen    = 255
	maxUserIDLen          = 128
	maxExternalImageIDLen = 255
	maxTokenLen           = 64
	maxPageTokenLen       = 255
	maxFacesPerUser       = 100
	maxFacesPerIndexCall  = 100
	maxUserFaceIDs        = 100
	maxDeleteFaceIDs      = 4096
	maxListFaceIDs        = 4096
	maxSearchFaces        = 4096 // SearchFaces' and SearchFacesByImage's MaxFaces
	maxListPage           = 4096 // ListFaces' and ListCollections' MaxResults
	maxDimension          = vector.MaxDim

	patternCollectionID = `[a-zA-Z0-9_.\-]+`
	patternUserID       = `[a-zA-Z0-9_.\-:]+`
	patternFaceID       = `[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`
	patternToken        = `^[a-zA-Z0-9-_]+$`
)

// Defaults from the contract.
const (
	DefaultSearchUsersThreshold    = 80
	DefaultAssociateFacesThreshold = 75
	DefaultSearchFacesThreshold    = 80
	DefaultMaxUsers                = 10
	DefaultMaxFaces                = 10
	DefaultListUsersPageSize       = 100
	DefaultListFacesPageSize       = 1000
	DefaultListCollectionsPageSize = 1000
)

func isIDByte(c byte, colon bool) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == '-' || colon && c == ':'
}

func matchesID(s string, colon bool) bool {
	for i := 0; i < len(s); i++ {
		if !isIDByte(s[i], colon) {
			return false
		}
	}
	return true
}

// isFaceID reports whether s is a face ID: a UUID in lowercase hex.
func isFaceID(s string) bool {
	_, ok := faceBytes(s)
	return ok
}

// faceBytes is the 16 bytes a face ID spells; ok is false unless id is a
// face ID in its one form, so equal bytes mean equal IDs.
func faceBytes[T string | []byte](id T) (b [16]byte, ok bool) {
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[18] != '-' || id[23] != '-' {
		return b, false
	}
	var bad byte
	for i, j := 0, 0; j < len(b); i, j = i+2, j+1 {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
		}
		hi, lo := lowerHex[id[i]], lowerHex[id[i+1]]
		bad |= hi | lo
		b[j] = hi<<4 | lo
	}
	return b, bad&notHex == 0
}

const notHex = 0x10

// lowerHex maps each byte to its value as a lowercase hex digit, or notHex.
var lowerHex = func() (t [256]byte) {
	for c := range t {
		switch {
		case c >= '0' && c <= '9':
			t[c] = byte(c - '0')
		case c >= 'a' && c <= 'f':
			t[c] = byte(c - 'a' + 10)
		default:
			t[c] = notHex
		}
	}
	return t
}()

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// quoted shortens a hostile value before it goes into a message.
func quoted(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return fmt.Sprintf("%q", s)
}

func (v *validator) stringField(name, s string, required bool, maxLen int, ok func(string) bool, pattern string) {
	switch {
	case s == "" && required:
		v.addf("Value null at '%s' failed to satisfy constraint: Member must not be null", name)
	case s == "":
	case len(s) > maxLen:
		v.addf("Value %s at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", quoted(s), name, maxLen)
	case !ok(s):
		v.addf("Value %s at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", quoted(s), name, pattern)
	}
}

func (v *validator) collectionID(s string) {
	v.stringField("CollectionId", s, true, maxCollectionIDLen, func(s string) bool { return matchesID(s, false) }, patternCollectionID)
}

func (v *validator) userID(name, s string, required bool) {
	v.stringField(name, s, required, maxUserIDLen, func(s string) bool { return matchesID(s, true) }, patternUserID)
}

func (v *validator) externalImageID(s string) {
	v.stringField("ExternalImageId", s, false, maxExternalImageIDLen, func(s string) bool { return matchesID(s, true) }, patternUserID)
}

func (v *validator) faceID(name, s string, required bool) {
	v.stringField(name, s, required, 36, isFaceID, patternFaceID)
}

func (v *validator) clientToken(s string) {
	v.stringField("ClientRequestToken", s, false, maxTokenLen, isToken, patternToken)
}

func (v *validator) pageToken(s string) {
	if len(s) > maxPageTokenLen {
		v.addf("Value at 'NextToken' failed to satisfy constraint: Member must have length less than or equal to %d", maxPageTokenLen)
	}
}

func (v *validator) faceIDList(name string, ids []string, required bool, maxLen int) {
	switch {
	case ids == nil && !required:
		return
	case len(ids) == 0:
		v.addf("Value at '%s' failed to satisfy constraint: Member must have length greater than or equal to 1", name)
		return
	case len(ids) > maxLen:
		v.addf("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", name, maxLen)
		return
	}
	for i, id := range ids {
		if !isFaceID(id) {
			v.addf("Value %s at '%s.%d.member' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", quoted(id), name, i+1, patternFaceID)
			return
		}
	}
}

// intRange checks an optional integer and returns it or its default.
func (v *validator) intRange(name string, p *int32, lo, hi, def int) int {
	if p == nil {
		return def
	}
	n := int(*p)
	if n < lo {
		v.addf("Value '%d' at '%s' failed to satisfy constraint: Member must have value greater than or equal to %d", n, name, lo)
	} else if n > hi {
		v.addf("Value '%d' at '%s' failed to satisfy constraint: Member must have value less than or equal to %d", n, name, hi)
	}
	return n
}

// percent checks an optional 0-100 threshold and returns it or its default.
func (v *validator) percent(name string, p *float32, def float64) float64 {
	if p == nil {
		return def
	}
	f := float64(*p)
	if !(f >= 0 && f <= 100) { // also rejects NaN
		v.addf("Value '%g' at '%s' failed to satisfy constraint: Member must have value between 0 and 100", f, name)
	}
	return f
}

var qualityFilters = map[string]bool{"NONE": true, "AUTO": true, "LOW": true, "MEDIUM": true, "HIGH": true}

func (v *validator) qualityFilter(s string) {
	if s != "" && !qualityFilters[s] {
		v.addf("Value %s at 'QualityFilter' failed to satisfy constraint: Member must satisfy enum value set: [NONE, AUTO, LOW, MEDIUM, HIGH]", quoted(s))
	}
}

var attributes = map[string]bool{
	"DEFAULT": true, "ALL": true, "AGE_RANGE": true, "BEARD": true, "EMOTIONS": true, "EYE_DIRECTION": true,
	"EYEGLASSES": true, "EYES_OPEN": true, "GENDER": true, "MOUTH_OPEN": true, "MUSTACHE": true,
	"FACE_OCCLUDED": true, "SMILE": true, "SUNGLASSES": true,
}

func (v *validator) detectionAttributes(list []string) {
	for i, a := range list {
		if !attributes[a] {
			v.addf("Value %s at 'DetectionAttributes.%d.member' failed to satisfy constraint: Member must satisfy enum value set: [DEFAULT, ALL, AGE_RANGE, BEARD, EMOTIONS, EYE_DIRECTION, EYEGLASSES, EYES_OPEN, GENDER, MOUTH_OPEN, MUSTACHE, FACE_OCCLUDED, SMILE, SUNGLASSES]", quoted(a), i+1)
			return
		}
	}
}

// distinct is ids without repeats, in the order each first appears.
func distinct(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	return slices.DeleteFunc(slices.Clone(ids), func(id string) bool {
		dup := seen[id]
		seen[id] = true
		return dup
	})
}

func sortedUnique(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// validator gathers every constraint violation of one request, so a caller
// learns of all of them at once, in Rekognition's wording.
type validator struct{ problems []string }

func (v *validator) addf(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

// checked is the error of the problems validate finds.
func checked(validate func(*validator)) error {
	var v validator
	validate(&v)
	return v.err()
}

func (v *validator) err() error {
	switch len(v.problems) {
	case 0:
		return nil
	case 1:
		return invalid("1 validation error detected: %s", v.problems[0])
	default:
		return invalid("%d validation errors detected: %s", len(v.problems), strings.Join(v.problems, "; "))
	}
}
