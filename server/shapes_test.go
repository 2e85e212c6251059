package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// serviceModel is the part of Rekognition's service model (a copy of the
// project's reference in testdata) that describes responses.
type serviceModel struct {
	Operations map[string]struct {
		Output struct {
			Shape string `json:"shape"`
		} `json:"output"`
	} `json:"operations"`
	Shapes map[string]*modelShape `json:"shapes"`
}

type shapeRef struct {
	Shape string `json:"shape"`
}

type modelShape struct {
	Type     string              `json:"type"`
	Members  map[string]shapeRef `json:"members"`
	Member   shapeRef            `json:"member"`
	Value    shapeRef            `json:"value"`
	Required []string            `json:"required"`
	Enum     []string            `json:"enum"`
	Min      *float64            `json:"min"`
	Max      *float64            `json:"max"`
	Pattern  string              `json:"pattern"`
}

func readServiceModel(t *testing.T) *serviceModel {
	t.Helper()
	b, err := os.ReadFile("testdata/rekognition-faces-users.json")
	require.NoError(t, err)
	var m serviceModel
	require.NoError(t, json.Unmarshal(b, &m))
	return &m
}

// shapeChecker compares decoded JSON values with the model's shapes and
// records which structure members it saw.
type shapeChecker struct {
	m        *serviceModel
	seen     map[string]bool // "Shape.Member"
	problems []string
}

func (c *shapeChecker) fail(path, format string, args ...any) {
	c.problems = append(c.problems, path+": "+fmt.Sprintf(format, args...))
}

func (c *shapeChecker) check(path, name string, v any) {
	s := c.m.Shapes[name]
	if s == nil {
		c.fail(path, "the model has no shape %s", name)
		return
	}
	switch s.Type {
	case "structure":
		obj, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "%s is a structure, got %T", name, v)
			return
		}
		for k, mv := range obj {
			ref, ok := s.Members[k]
			if !ok {
				c.fail(path, "member %s is not in %s", k, name)
				continue
			}
			c.seen[name+"."+k] = true
			c.check(path+"."+k, ref.Shape, mv)
		}
		for _, r := range s.Required {
			if _, ok := obj[r]; !ok {
				c.fail(path, "required member %s of %s is missing", r, name)
			}
		}
	case "list":
		list, ok := v.([]any)
		if !ok {
			c.fail(path, "%s is a list, got %T", name, v)
			return
		}
		// Only the maximum: the model's minimum of DeletedFaces (1) is a
		// request-side constraint; "nothing deleted" is an empty list.
		if s.Max != nil && float64(len(list)) > *s.Max {
			c.fail(path, "%d items, more than %v", len(list), *s.Max)
		}
		for i, it := range list {
			c.check(fmt.Sprintf("%s[%d]", path, i), s.Member.Shape, it)
		}
	case "map":
		obj, ok := v.(map[string]any)
		if !ok {
			c.fail(path, "%s is a map, got %T", name, v)
			return
		}
		for k, mv := range obj {
			c.check(path+"."+k, s.Value.Shape, mv)
		}
	case "string", "blob":
		str, ok := v.(string)
		if !ok {
			c.fail(path, "%s is a %s, got %T", name, s.Type, v)
			return
		}
		if s.Type == "blob" {
			return
		}
		if s.Enum != nil && !slices.Contains(s.Enum, str) {
			c.fail(path, "%q is not one of %s's values %v", str, name, s.Enum)
		}
		c.bounds(path, name, s, float64(len(str)))
		if s.Pattern != "" {
			if re, err := regexp.Compile("^(?:" + s.Pattern + ")$"); err == nil && !re.MatchString(str) {
				c.fail(path, "%q does not match %s's pattern %s", str, name, s.Pattern)
			}
		}
	case "integer", "long", "float", "double", "timestamp":
		n, ok := v.(json.Number)
		if !ok {
			c.fail(path, "%s is a number (%s), got %T", name, s.Type, v)
			return
		}
		if s.Type == "integer" || s.Type == "long" {
			if _, err := n.Int64(); err != nil {
				c.fail(path, "%s is an %s, got %s", name, s.Type, n)
				return
			}
		}
		f, err := n.Float64()
		if err != nil {
			c.fail(path, "%s: %v", name, err)
			return
		}
		if s.Type != "timestamp" {
			c.bounds(path, name, s, f)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			c.fail(path, "%s is a boolean, got %T", name, v)
		}
	default:
		c.fail(path, "shape %s has type %s, which this check does not know", name, s.Type)
	}
}

func (c *shapeChecker) bounds(path, name string, s *modelShape, x float64) {
	if s.Min != nil && x < *s.Min || s.Max != nil && x > *s.Max {
		c.fail(path, "%v is outside %s's bounds [%v, %v]", x, name, deref(s.Min), deref(s.Max))
	}
}

func deref(p *float64) any {
	if p == nil {
		return "-"
	}
	return *p
}

// unreturned lists the members of every structure reachable from the
// operations' outputs through members facesearch returns that it never
// returned, as "Shape.Member".
func (c *shapeChecker) unreturned() []string {
	var out []string
	visited := map[string]bool{}
	var walk func(name string)
	walk = func(name string) {
		if visited[name] {
			return
		}
		visited[name] = true
		s := c.m.Shapes[name]
		switch s.Type {
		case "structure":
			for k, ref := range s.Members {
				if c.seen[name+"."+k] {
					walk(ref.Shape)
				} else {
					out = append(out, name+"."+k)
				}
			}
		case "list":
			walk(s.Member.Shape)
		case "map":
			walk(s.Value.Shape)
		}
	}
	for _, op := range c.m.Operations {
		walk(op.Output.Shape)
	}
	slices.Sort(out)
	return out
}

// documentedUnreturned reads README's one list of the response members
// facesearch does not return: the table rows of its section "Response
// members facesearch does not return".
func documentedUnreturned(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("../README.md")
	require.NoError(t, err)
	defer f.Close()
	var out []string
	in := false
	row := regexp.MustCompile("^\\| `([A-Za-z]+\\.[A-Za-z]+)` \\|")
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			in = strings.Contains(line, "Response members facesearch does not return")
			continue
		}
		if m := row.FindStringSubmatch(line); in && m != nil {
			out = append(out, m[1])
		}
	}
	slices.Sort(out)
	return out
}

// TestResponseShapes drives every one of the 16 operations through the
// cases that fill their responses (pages with a NextToken, each kind of
// unsuccessful face, unindexed and unsearched faces) and compares each
// response body with its output shape in Rekognition's service model,
// recursively: member names, types, required members, enum values, bounds
// and patterns. The members it never sees must be exactly README's list of
// what facesearch does not return.
func TestResponseShapes(t *testing.T) {
	m := readServiceModel(t)
	require.Len(t, m.Operations, 16)
	_, ts := newServer(t, nil)
	chk := &shapeChecker{m: m, seen: map[string]bool{}}
	called := map[string]int{}
	call := func(op string, body map[string]any) map[string]any {
		t.Helper()
		r := rawCall(t, ts.URL, op, mustJSON(t, body))
		require.Equal(t, http.StatusOK, r.Status, "%s: %s", op, r.Body)
		dec := json.NewDecoder(bytes.NewReader(r.Body))
		dec.UseNumber()
		var v any
		require.NoError(t, dec.Decode(&v), "%s", op)
		called[op]++
		chk.check(op, m.Operations[op].Output.Shape, v)
		out, _ := v.(map[string]any)
		return out
	}
	faceIDs := func(out map[string]any) []string {
		var ids []string
		for _, r := range out["FaceRecords"].([]any) {
			ids = append(ids, r.(map[string]any)["Face"].(map[string]any)["FaceId"].(string))
		}
		return ids
	}
	const unknown = "00000000-0000-4000-8000-000000000000"
	rng := rand.New(rand.NewPCG(23, 1))
	a, b := randVec(rng, 4), randVec(rng, 4)
	a2 := near(rng, a, 1, 0.01)[0]
	b[0], a[0], a2[0] = -2, 2, 2 // a and b far apart

	call("CreateCollection", map[string]any{"CollectionId": "c", "Tags": map[string]string{"facesearch:dimension": "4", "facesearch:similarity": "cosine"}})
	call("CreateCollection", map[string]any{"CollectionId": "d"})
	call("ListCollections", map[string]any{"MaxResults": 1})
	ix := call("IndexFaces", map[string]any{"CollectionId": "c", "ExternalImageId": "img.jpg", "MaxFaces": 3,
		"Image": map[string]any{"Bytes": npyRows(t, [][]float32{a, a2, b, randVec(rng, 4)})}})
	ids := faceIDs(ix)
	f1, f2, f3 := ids[0], ids[1], ids[2]
	call("CreateUser", map[string]any{"CollectionId": "c", "UserId": "u1", "ClientRequestToken": "t1"})
	call("CreateUser", map[string]any{"CollectionId": "c", "UserId": "u2"})
	call("AssociateFaces", map[string]any{"CollectionId": "c", "UserId": "u1", "FaceIds": []string{f1}})
	call("AssociateFaces", map[string]any{"CollectionId": "c", "UserId": "u1", "FaceIds": []string{f3, unknown}, "UserMatchThreshold": 99})
	call("AssociateFaces", map[string]any{"CollectionId": "c", "UserId": "u2", "FaceIds": []string{f1, f2}})
	call("ListFaces", map[string]any{"CollectionId": "c", "MaxResults": 1})
	call("ListFaces", map[string]any{"CollectionId": "c", "UserId": "u1"})
	call("ListUsers", map[string]any{"CollectionId": "c", "MaxResults": 1})
	call("DescribeCollection", map[string]any{"CollectionId": "c"})
	call("SearchFaces", map[string]any{"CollectionId": "c", "FaceId": f1, "FaceMatchThreshold": 0})
	call("SearchFacesByImage", map[string]any{"CollectionId": "c", "Image": map[string]any{"Bytes": npyVec(a)}, "FaceMatchThreshold": 0})
	call("SearchUsers", map[string]any{"CollectionId": "c", "FaceId": f1, "UserMatchThreshold": 0})
	call("SearchUsers", map[string]any{"CollectionId": "c", "UserId": "u1", "UserMatchThreshold": 0})
	call("SearchUsersByImage", map[string]any{"CollectionId": "c", "Image": map[string]any{"Bytes": npyRows(t, [][]float32{a, b})}, "UserMatchThreshold": 0})
	call("DisassociateFaces", map[string]any{"CollectionId": "c", "UserId": "u2", "FaceIds": []string{f1, f2, unknown}})
	call("DeleteFaces", map[string]any{"CollectionId": "c", "FaceIds": []string{f1, f3, unknown}})
	call("DeleteUser", map[string]any{"CollectionId": "c", "UserId": "u2"})
	call("DeleteCollection", map[string]any{"CollectionId": "d"})

	for op := range m.Operations {
		require.NotZero(t, called[op], "%s was not called", op)
	}
	require.Empty(t, chk.problems, "responses that differ from the service model")
	require.Equal(t, documentedUnreturned(t), chk.unreturned(),
		"README's list of members facesearch does not return must be exactly the members no response had")
}

// TestShapeCheckerCatches: the shape check finds each kind of difference.
func TestShapeCheckerCatches(t *testing.T) {
	m := readServiceModel(t)
	tests := []struct{ name, op, body, want string }{
		{"unknown member", "DeleteCollection", `{"StatusCode": 200, "Extra": 1}`, "member Extra is not in"},
		{"string for integer", "DeleteCollection", `{"StatusCode": "200"}`, "is a number"},
		{"fraction for integer", "DeleteCollection", `{"StatusCode": 2.5}`, "is an integer"},
		{"enum", "AssociateFaces", `{"UserStatus": "BUSY"}`, "is not one of"},
		{"pattern", "AssociateFaces", `{"AssociatedFaces": [{"FaceId": "NOT-A-UUID"}]}`, "does not match"},
		{"bounds", "AssociateFaces", `{"UnsuccessfulFaceAssociations": [{"Confidence": 101}]}`, "outside"},
		{"nested structure", "ListFaces", `{"Faces": [{"BoundingBox": [1, 1, 0, 0]}]}`, "is a structure"},
		{"list", "ListCollections", `{"CollectionIds": "c"}`, "is a list"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chk := &shapeChecker{m: m, seen: map[string]bool{}}
			dec := json.NewDecoder(strings.NewReader(tt.body))
			dec.UseNumber()
			var v any
			require.NoError(t, dec.Decode(&v))
			chk.check(tt.op, m.Operations[tt.op].Output.Shape, v)
			require.Len(t, chk.problems, 1)
			require.Contains(t, chk.problems[0], tt.want)
		})
	}
}
