package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/server"
)

// The load test: 64 clients send a mix of reads and writes over HTTP for a
// bounded time (4 s; 60 s with FACESEARCH_STRESS) to a server that admits
// 48 requests at once, so some are throttled. Each client owns the users
// and faces it creates and keeps a model of what the server acknowledged.
// Every error must be one its operation documents; the only one expected
// under load is ThrottlingException, which the server answers before the
// operation runs. At the end, the state read back over HTTP, then after a
// restart, must be exactly the union of the clients' models.

const (
	loadClients     = 64
	loadConcurrency = 48
	loadColl        = "load"
	loadDim         = 16
)

type loadFace struct{ owner, ext string }

// loadClient is one client and its model of what it owns.
type loadClient struct {
	id    int
	url   string
	http  *http.Client
	r     *rand.Rand
	n     int
	faces map[string]*loadFace // own faces -> owner ("" for none)
	vecs  map[string][]float32 // own faces' vectors as sent
	users map[string][]string  // own users -> faces
	lat   map[string][]float64 // operation -> latencies in ms
	codes map[string]int       // operation + " " + code -> count
	bad   []string             // errors no operation documents, or surprises
}

// call posts one operation and decodes a success into out. It returns the
// error code ("" on success).
func (c *loadClient) call(op string, in any, out any) string {
	body, err := json.Marshal(in)
	if err != nil {
		panic(err)
	}
	req, err := http.NewRequest(http.MethodPost, c.url+"/", bytes.NewReader(body))
	if err != nil {
		panic(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "RekognitionService."+op)
	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.bad = append(c.bad, fmt.Sprintf("%s: transport: %v", op, err))
		return "transport"
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	c.lat[op] = append(c.lat[op], float64(time.Since(start).Microseconds())/1000)
	if err != nil {
		c.bad = append(c.bad, fmt.Sprintf("%s: read: %v", op, err))
		return "transport"
	}
	if resp.StatusCode == http.StatusOK {
		c.codes[op+" OK"]++
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				c.bad = append(c.bad, fmt.Sprintf("%s: answer: %v", op, err))
			}
		}
		return ""
	}
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(b, &e)
	c.codes[op+" "+e.Type]++
	if !slices.Contains(hostileDocumented[op], e.Type) || resp.Header.Get("X-Amzn-ErrorType") != e.Type {
		c.bad = append(c.bad, fmt.Sprintf("%s: undocumented %d %s: %s", op, resp.StatusCode, e.Type, e.Message))
	} else if e.Type != engine.CodeThrottling {
		c.bad = append(c.bad, fmt.Sprintf("%s: %s: %s", op, e.Type, e.Message))
	}
	return e.Type
}

func (c *loadClient) name() string { c.n++; return fmt.Sprintf("c%d-%d", c.id, c.n) }

func (c *loadClient) vector() []float32 {
	v := make([]float32, loadDim)
	for i := range v {
		v[i] = float32(c.r.NormFloat64())
	}
	return v
}

func (c *loadClient) freeFaces() []string {
	var out []string
	for id, f := range c.faces {
		if f.owner == "" {
			out = append(out, id)
		}
	}
	slices.Sort(out) // map order is not seeded
	return out
}

func (c *loadClient) pick(list []string, n int) []string {
	n = min(n, len(list))
	out := make([]string, 0, n)
	for _, i := range c.r.Perm(len(list))[:n] {
		out = append(out, list[i])
	}
	return out
}

func (c *loadClient) userIDs() []string { return slices.Sorted(maps.Keys(c.users)) }

// step runs one operation: half reads, half writes.
func (c *loadClient) step() {
	free, users := c.freeFaces(), c.userIDs()
	var withFaces []string
	for _, u := range users {
		if len(c.users[u]) > 0 {
			withFaces = append(withFaces, u)
		}
	}
	coll := map[string]any{"CollectionId": loadColl}
	with := func(kv ...any) map[string]any {
		m := maps.Clone(coll)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	switch x := c.r.IntN(20); {
	// Writes.
	case x < 3 && len(c.faces) < 40:
		ext := c.name()
		rows := make([][]float32, 1+c.r.IntN(3))
		for i := range rows {
			rows[i] = c.vector()
		}
		var out engine.IndexFacesOutput
		if c.call("IndexFaces", with("ExternalImageId", ext, "Image", map[string]any{"Bytes": npyRowsBytes(rows)}), &out) == "" {
			for i, r := range out.FaceRecords {
				c.faces[r.Face.FaceId] = &loadFace{ext: ext}
				c.vecs[r.Face.FaceId] = rows[i]
			}
		}
	case x < 4 && len(c.users) < 6:
		u := c.name()
		if c.call("CreateUser", with("UserId", u, "ClientRequestToken", "t-"+u), nil) == "" {
			c.users[u] = nil
		}
	case x < 6 && len(users) > 0 && len(free) > 0:
		u := c.pick(users, 1)[0]
		faces := c.pick(free, 1+c.r.IntN(2))
		var out engine.AssociateFacesOutput
		if c.call("AssociateFaces", with("UserId", u, "FaceIds", faces, "UserMatchThreshold", 0), &out) == "" {
			for _, a := range out.AssociatedFaces {
				c.faces[a.FaceId].owner = u
				c.users[u] = append(c.users[u], a.FaceId)
			}
			if len(out.AssociatedFaces) != len(faces) {
				c.bad = append(c.bad, fmt.Sprintf("AssociateFaces %v: %+v", faces, out))
			}
		}
	case x < 7 && len(withFaces) > 0:
		u := c.pick(withFaces, 1)[0]
		faces := c.pick(c.users[u], 1)
		var out engine.DisassociateFacesOutput
		if c.call("DisassociateFaces", with("UserId", u, "FaceIds", faces), &out) == "" {
			for _, d := range out.DisassociatedFaces {
				c.faces[d.FaceId].owner = ""
				c.users[u] = slices.DeleteFunc(c.users[u], func(f string) bool { return f == d.FaceId })
			}
		}
	case x < 8 && len(free) > 0:
		faces := c.pick(free, 1+c.r.IntN(2))
		var out engine.DeleteFacesOutput
		if c.call("DeleteFaces", with("FaceIds", faces), &out) == "" {
			for _, id := range out.DeletedFaces {
				delete(c.faces, id)
				delete(c.vecs, id)
			}
			if len(out.DeletedFaces) != len(faces) {
				c.bad = append(c.bad, fmt.Sprintf("DeleteFaces %v: %+v", faces, out))
			}
		}
	case x < 9 && len(users) > 0 && c.r.IntN(3) == 0:
		u := c.pick(users, 1)[0]
		if c.call("DeleteUser", with("UserId", u), nil) == "" {
			for _, f := range c.users[u] {
				c.faces[f].owner = ""
			}
			delete(c.users, u)
		}
	// Reads.
	case x < 12:
		c.call("SearchUsersByImage", with("Image", map[string]any{"Bytes": npyVec(c.vector())}, "UserMatchThreshold", 0, "MaxUsers", 10), nil)
	case x < 14:
		c.call("SearchFacesByImage", with("Image", map[string]any{"Bytes": npyVec(c.vector())}, "FaceMatchThreshold", 0, "MaxFaces", 20), nil)
	case x < 15 && len(c.faces) > 0:
		c.call("SearchFaces", with("FaceId", c.pick(slices.Sorted(maps.Keys(c.faces)), 1)[0]), nil)
	case x < 16 && len(withFaces) > 0:
		c.call("SearchUsers", with("UserId", c.pick(withFaces, 1)[0], "UserMatchThreshold", 0), nil)
	case x < 17 && len(users) > 0:
		u := c.pick(users, 1)[0]
		var out engine.ListFacesOutput
		if c.call("ListFaces", with("UserId", u), &out) == "" {
			var got []string
			for _, f := range out.Faces {
				got = append(got, f.FaceId)
			}
			// As sets: the listing's order (indexing order) is the engine tests'.
			slices.Sort(got)
			if !assert.ObjectsAreEqual(slices.Sorted(slices.Values(c.users[u])), got) && !(len(got) == 0 && len(c.users[u]) == 0) {
				c.bad = append(c.bad, fmt.Sprintf("ListFaces of %s: %v, acknowledged %v", u, got, c.users[u]))
			}
		}
	case x < 18:
		c.call("ListUsers", with("MaxResults", 50), nil)
	default:
		c.call("DescribeCollection", coll, nil)
	}
}

// npyRowsBytes is rows as a .npy array, (d,) for one row.
func npyRowsBytes(rows [][]float32) []byte {
	if len(rows) == 1 {
		return npyVec(rows[0])
	}
	return npyRaw(fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': (%d, %d), }", len(rows), len(rows[0])), f32le(slices.Concat(rows...)))
}

func TestLoad(t *testing.T) {
	duration := 4 * time.Second
	if os.Getenv("FACESEARCH_STRESS") != "" {
		duration = 60 * time.Second
	}
	dir := t.TempDir()
	e, err := engine.Open(dir, nil)
	require.NoError(t, err)
	s, err := server.New(e, &server.Options{MaxConcurrentRequests: loadConcurrency, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts := httptest.NewServer(s)
	closed := false
	t.Cleanup(func() {
		if !closed {
			ts.Close()
			e.Close()
		}
	})
	transport := &http.Transport{MaxIdleConnsPerHost: loadClients, MaxConnsPerHost: loadClients}
	defer transport.CloseIdleConnections()
	setup := &loadClient{url: ts.URL, http: &http.Client{Transport: transport}, lat: map[string][]float64{}, codes: map[string]int{}}
	require.Empty(t, setup.call("CreateCollection", map[string]any{"CollectionId": loadColl,
		"Tags": map[string]string{engine.TagDimension: fmt.Sprint(loadDim), engine.TagSimilarity: engine.SimilarityCosine}}, nil))

	clients := make([]*loadClient, loadClients)
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for i := range clients {
		c := &loadClient{id: i, url: ts.URL, http: &http.Client{Transport: transport, Timeout: time.Minute},
			r: rand.New(rand.NewPCG(20260601, uint64(i))), faces: map[string]*loadFace{}, vecs: map[string][]float32{},
			users: map[string][]string{}, lat: map[string][]float64{}, codes: map[string]int{}}
		clients[i] = c
		wg.Go(func() {
			for time.Now().Before(deadline) && len(c.bad) < 10 {
				c.step()
			}
		})
	}
	wg.Wait()

	// Errors by code, latencies by operation.
	codes := map[string]int{}
	lat := map[string][]float64{}
	var all []float64
	for _, c := range clients {
		for k, n := range c.codes {
			codes[k] += n
		}
		for op, l := range c.lat {
			lat[op] = append(lat[op], l...)
			all = append(all, l...)
		}
		assert.Empty(t, c.bad, "client %d", c.id)
	}
	pct := func(l []float64, p float64) float64 {
		sort.Float64s(l)
		return l[min(len(l)-1, int(p*float64(len(l))))]
	}
	var lines []string
	for _, op := range slices.Sorted(maps.Keys(lat)) {
		lines = append(lines, fmt.Sprintf("%s n=%d p50=%.1fms p99=%.1fms", op, len(lat[op]), pct(lat[op], 0.5), pct(lat[op], 0.99)))
	}
	var byCode []string
	errs := 0
	for _, k := range slices.Sorted(maps.Keys(codes)) {
		if !strings.HasSuffix(k, " OK") {
			byCode = append(byCode, fmt.Sprintf("%s=%d", k, codes[k]))
			errs += codes[k]
		}
	}
	t.Logf("load: %d clients for %v against %d concurrent slots: %d requests (%.0f/s), p50 %.1f ms, p99 %.1f ms; %d errors: %s",
		loadClients, duration, loadConcurrency, len(all), float64(len(all))/duration.Seconds(), pct(all, 0.5), pct(all, 0.99), errs, strings.Join(byCode, ", "))
	t.Logf("load by operation: %s", strings.Join(lines, "; "))

	// The final state is exactly what was acknowledged, over HTTP and after
	// a restart.
	want := loadModel(clients)
	requireLoadState(t, ts.URL, want, "after the load")
	ts.Close()
	require.NoError(t, e.Close())
	closed = true
	rep, err := engine.Check(context.Background(), dir)
	require.NoError(t, err)
	require.True(t, rep.OK(), "%v", rep.Problems)
	e, err = engine.Open(dir, nil)
	require.NoError(t, err)
	defer e.Close()
	s, err = server.New(e, &server.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ts = httptest.NewServer(s)
	defer ts.Close()
	requireLoadState(t, ts.URL, want, "after a restart")
	t.Logf("load: final state verified before and after a restart: %d faces, %d users, every one acknowledged", len(want.faces), len(want.users))

	// Every face is where its vector says: searching with it finds it first.
	c := &loadClient{url: ts.URL, http: &http.Client{}, lat: map[string][]float64{}, codes: map[string]int{}}
	checked := 0
	for _, cl := range clients {
		for id, v := range cl.vecs {
			var out engine.SearchFacesByImageOutput
			require.Empty(t, c.call("SearchFacesByImage", map[string]any{"CollectionId": loadColl, "Image": map[string]any{"Bytes": npyVec(v)}, "MaxFaces": 1}, &out))
			require.Len(t, out.FaceMatches, 1)
			require.Equal(t, id, out.FaceMatches[0].Face.FaceId)
			checked++
			break
		}
	}
	require.Positive(t, checked)
}

type loadState struct {
	faces map[string]loadFace
	users map[string][]string
}

func loadModel(clients []*loadClient) loadState {
	m := loadState{faces: map[string]loadFace{}, users: map[string][]string{}}
	for _, c := range clients {
		for id, f := range c.faces {
			m.faces[id] = *f
		}
		for u, fs := range c.users {
			m.users[u] = slices.Sorted(slices.Values(fs))
		}
	}
	return m
}

func requireLoadState(t *testing.T, url string, want loadState, when string) {
	t.Helper()
	c := &loadClient{url: url, http: &http.Client{}, lat: map[string][]float64{}, codes: map[string]int{}}
	got := loadState{faces: map[string]loadFace{}, users: map[string][]string{}}
	in := map[string]any{"CollectionId": loadColl, "MaxResults": 500}
	for {
		var out engine.ListFacesOutput
		require.Empty(t, c.call("ListFaces", in, &out), "%v", c.bad)
		for _, f := range out.Faces {
			got.faces[f.FaceId] = loadFace{owner: f.UserId, ext: f.ExternalImageId}
		}
		if out.NextToken == "" {
			break
		}
		in["NextToken"] = out.NextToken
	}
	uin := map[string]any{"CollectionId": loadColl, "MaxResults": 100}
	for {
		var out engine.ListUsersOutput
		require.Empty(t, c.call("ListUsers", uin, &out), "%v", c.bad)
		for _, u := range out.Users {
			var lf engine.ListFacesOutput
			require.Empty(t, c.call("ListFaces", map[string]any{"CollectionId": loadColl, "UserId": u.UserId}, &lf))
			got.users[u.UserId] = []string{}
			for _, f := range lf.Faces {
				got.users[u.UserId] = append(got.users[u.UserId], f.FaceId)
			}
			slices.Sort(got.users[u.UserId])
			wantStatus := engine.UserStatusCreated
			if len(lf.Faces) > 0 {
				wantStatus = engine.UserStatusActive
			}
			require.Equal(t, wantStatus, u.UserStatus, "%s: status of %s", when, u.UserId)
		}
		if out.NextToken == "" {
			break
		}
		uin["NextToken"] = out.NextToken
	}
	for u, fs := range want.users {
		if fs == nil {
			want.users[u] = []string{}
		}
	}
	require.Equal(t, want.faces, got.faces, "%s: faces", when)
	require.Equal(t, want.users, got.users, "%s: users and their faces", when)
	var d engine.DescribeCollectionOutput
	require.Empty(t, c.call("DescribeCollection", map[string]any{"CollectionId": loadColl}, &d))
	require.Equal(t, int64(len(want.faces)), d.FaceCount, when)
	require.Equal(t, int64(len(want.users)), d.UserCount, when)
}
