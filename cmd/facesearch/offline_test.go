package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image/png"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/facesearch/facesearch/bench"
	"github.com/facesearch/facesearch/engine"
	"github.com/facesearch/facesearch/internal/npy"
	"github.com/facesearch/facesearch/internal/records"
)

// cli runs the command as a user would and returns its exit code and
// output.
func cli(t testing.TB, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	m := &Main{Stdin: stdin, Stdout: &out, Stderr: &errOut}
	code = m.Run(context.Background(), args)
	return code, out.String(), errOut.String()
}

// cliOK runs the command and requires it to succeed.
func cliOK(t testing.TB, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, nil, args...)
	require.Equal(t, exitOK, code, "facesearch %s\nstderr: %s", strings.Join(args, " "), errOut)
	return out
}

func writeLines(t testing.TB, path string, recs []records.JSON) {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, r := range recs {
		require.NoError(t, enc.Encode(r))
	}
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

// people makes faces of n identities from the bench generator: identity i
// is user "person-i" with external IDs "person-i-j.jpg"; every third
// identity's last face has no user, and a user without faces comes first.
func people(n, faces, dim int, seed int64) []records.JSON {
	g := bench.NewGenerator(bench.GenConfig{Identities: n, FacesPerIdentity: faces, Dim: dim, IntraCosine: 0.7, Seed: seed})
	recs := []records.JSON{{UserID: "nobody-yet"}}
	// Users are created in an order that is not their IDs' order, so that
	// primary-key order is seen to be kept.
	for k := range n {
		i := (k * 7) % n
		for j, v := range g.Faces(i) {
			r := records.JSON{Embedding: v, ExternalImageID: fmt.Sprintf("person-%d-%d.jpg", i, j), UserID: fmt.Sprintf("person-%d", i)}
			if i%3 == 0 && j == faces-1 {
				r.UserID = ""
			}
			recs = append(recs, r)
		}
	}
	return recs
}

func TestImportExportRoundTrip(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "people.jsonl")
	writeLines(t, src, people(40, 5, 32, 1))
	d1, d2, d3 := filepath.Join(dir, "d1"), filepath.Join(dir, "d2"), filepath.Join(dir, "d3")

	out := cliOK(t, "import", "--data", d1, "--collection", "staff", "--create", "--batch-size", "64", src)
	assert.Contains(t, out, "imported 200 faces and 41 new users")
	first := cliOK(t, "export", "--data", d1, "--collection", "staff")
	firstFile := filepath.Join(dir, "first.jsonl")
	require.NoError(t, os.WriteFile(firstFile, []byte(first), 0o644))

	// JSON Lines: the second export is the first, byte for byte: the same
	// IDs, users in the same primary-key order, the same associations, and
	// (the float32 text being exact) the same vector bits.
	cliOK(t, "import", "--data", d2, "--collection", "staff", "--create", firstFile)
	second := cliOK(t, "export", "--data", d2, "--collection", "staff")
	require.Equal(t, first, second)

	// The same through standard input.
	code, _, errOut := cli(t, strings.NewReader(first), "import", "--data", filepath.Join(dir, "d4"), "--collection", "staff", "--create", "-")
	require.Equal(t, exitOK, code, errOut)
	require.Equal(t, first, cliOK(t, "export", "--data", filepath.Join(dir, "d4"), "--collection", "staff"))

	// .npy and its sidecar carry everything but the user without faces.
	npyPath := filepath.Join(dir, "staff.npy")
	cliOK(t, "export", "--data", d1, "--collection", "staff", "--format", "npy", "--out", npyPath)
	require.FileExists(t, filepath.Join(dir, "staff.ids"))
	cliOK(t, "import", "--data", d3, "--collection", "staff", "--create", npyPath)
	third := cliOK(t, "export", "--data", d3, "--collection", "staff")
	faceLines := func(s string) []string {
		var out []string
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			if strings.Contains(l, `"face_id"`) {
				out = append(out, l)
			}
		}
		return out
	}
	require.Equal(t, faceLines(first), faceLines(third))

	// Check the parsed records too: what the test put in came out, with
	// the vectors normalized.
	recs := parseExport(t, first)
	var faces, users int
	for _, r := range recs {
		if r.Embedding == nil {
			users++
			continue
		}
		faces++
		require.InDelta(t, 1, vecNorm(r.Embedding), 1e-6)
		require.Regexp(t, `^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`, r.FaceID)
	}
	assert.Equal(t, 200, faces)
	assert.Equal(t, 41, users)
	assert.Equal(t, "nobody-yet", recs[0].UserID, "users come in primary-key order")
	assert.Equal(t, "person-7", recs[2].UserID)

	// Importing the export again into its own collection is refused: the
	// face IDs are taken.
	code, _, errOut = cli(t, nil, "import", "--data", d1, "--collection", "staff", firstFile)
	require.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "first.jsonl:42: the face id:")
}

func parseExport(t testing.TB, s string) []records.JSON {
	t.Helper()
	var recs []records.JSON
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r records.JSON
		require.NoError(t, json.Unmarshal(sc.Bytes(), &r))
		recs = append(recs, r)
	}
	return recs
}

func vecNorm(v []float32) float64 {
	var s float64
	for _, x := range v {
		s += float64(x) * float64(x)
	}
	return math.Sqrt(s)
}

func TestImportBadLine(t *testing.T) {
	const lines, bad, batch = 50, 27, 10
	tests := []struct {
		name    string
		line    string
		message string
	}{
		{"cut short", `{"embedding": [0.1, 0.2`, "the object is cut short"},
		{"not JSON", `{"embedding": [0.1, NaN, 0.3, 0.4]}`, "not valid JSON"},
		{"a string for a number", `{"embedding": [0.1, "x", 0.3, 0.4]}`, `field "embedding"`},
		{"a misspelt field", `{"embeding": [0.1, 0.2, 0.3, 0.4]}`, `unknown field "embeding"`},
		{"trailing data", `{"embedding": [0.1, 0.2, 0.3, 0.4]} {}`, "unexpected data after the JSON object"},
		{"zero vector", `{"embedding": [0, 0, 0, 0]}`, "zero vector"},
		{"wrong dimension", `{"embedding": [0.1, 0.2, 0.3]}`, "has 3 dimensions; collection c holds 4-dimensional"},
		{"float32 overflow", `{"embedding": [1e39, 0.2, 0.3, 0.4]}`, "float32"},
		{"bad user", `{"embedding": [0.1, 0.2, 0.3, 0.4], "user_id": "a b"}`, "UserId"},
		{"bad face id", `{"embedding": [0.1, 0.2, 0.3, 0.4], "face_id": "F00"}`, "FaceId"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var b strings.Builder
			for i := 1; i <= lines; i++ {
				if i == bad {
					b.WriteString(tc.line + "\n")
					continue
				}
				fmt.Fprintf(&b, `{"embedding": [%d, 1, 2, 3], "external_image_id": "line-%d", "user_id": "u%d"}`+"\n", i, i, i%3)
			}
			file := filepath.Join(dir, "faces.jsonl")
			require.NoError(t, os.WriteFile(file, []byte(b.String()), 0o644))
			data := filepath.Join(dir, "data")
			code, _, errOut := cli(t, nil, "import", "--data", data, "--collection", "c", "--create", "--dim", "4", "--batch-size", fmt.Sprint(batch), file)
			require.Equal(t, exitFailure, code)
			assert.Contains(t, errOut, fmt.Sprintf("faces.jsonl:%d: ", bad), "the error names the line")
			assert.Contains(t, errOut, tc.message)
			assert.Contains(t, errOut, "nothing of its batch was imported (7 records, from "+file+":21 on)")
			assert.Contains(t, errOut, "the collection keeps the 20 faces (20 records) of the 2 batches before it")

			// The store holds exactly the batches before the bad line.
			var got []string
			for _, r := range parseExport(t, cliOK(t, "export", "--data", data, "--collection", "c")) {
				if r.Embedding != nil {
					got = append(got, r.ExternalImageID)
				}
			}
			var want []string
			for i := 1; i <= bad-bad%batch; i++ { // the two batches before line 27's
				want = append(want, fmt.Sprintf("line-%d", i))
			}
			assert.ElementsMatch(t, want, got)

			// A dry run lists the bad line and writes nothing.
			code, out, errOut := cli(t, nil, "import", "--data", data, "--collection", "c", "--dry-run", file)
			require.Equal(t, exitFailure, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, fmt.Sprintf("faces.jsonl:%d: ", bad))
			assert.Equal(t, strings.Count(cliOK(t, "export", "--data", data, "--collection", "c"), "\n"), 20+3, "20 faces and 3 users")
		})
	}
}

func TestImportNPY(t *testing.T) {
	dir := t.TempDir()
	g := bench.NewGenerator(bench.GenConfig{Identities: 3, FacesPerIdentity: 4, Dim: 8, Seed: 2})
	// A folder per person, one (d,) file per photo: the file name is the
	// external image ID and --user-from-dir makes the folder the user.
	for i := range 3 {
		person := filepath.Join(dir, "people", fmt.Sprintf("p%d", i))
		require.NoError(t, os.MkdirAll(person, 0o755))
		for j, v := range g.Faces(i) {
			require.NoError(t, os.WriteFile(filepath.Join(person, fmt.Sprintf("photo%d.npy", j)), npy.EncodeVector(v), 0o644))
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "people", "README.txt"), []byte("not an embedding"), 0o644))
	data := filepath.Join(dir, "data")
	out := cliOK(t, "import", "--data", data, "--collection", "c", "--create", "--user-from-dir", filepath.Join(dir, "people"))
	assert.Contains(t, out, "imported 12 faces and 3 new users")
	recs := parseExport(t, cliOK(t, "export", "--data", data, "--collection", "c"))
	perUser, exts := map[string]int{}, map[string]bool{}
	for _, r := range recs[3:] {
		perUser[r.UserID]++
		exts[r.ExternalImageID] = true
	}
	assert.Equal(t, map[string]int{"p0": 4, "p1": 4, "p2": 4}, perUser)
	assert.Equal(t, map[string]bool{"photo0": true, "photo1": true, "photo2": true, "photo3": true}, exts)

	// An (n, d) file with a sidecar, and one that disagrees with its sidecar.
	var rows [][]float32
	for i := range 3 {
		rows = append(rows, g.Faces(i)...)
	}
	var buf bytes.Buffer
	require.NoError(t, npy.Encode(&buf, rows, false))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "all.npy"), buf.Bytes(), 0o644))
	var ids strings.Builder
	for i := range 3 {
		for j := range 4 {
			fmt.Fprintf(&ids, "img-%d-%d\tq%d\n", i, j, i)
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "all.ids"), []byte(ids.String()), 0o644))
	out = cliOK(t, "import", "--data", data, "--collection", "d", "--create", filepath.Join(dir, "all.npy"))
	assert.Contains(t, out, "imported 12 faces and 3 new users")
	users := cliOK(t, "users", "list", "--data", data, "--collection", "d")
	assert.Equal(t, "USER_ID  STATUS\nq0       ACTIVE\nq1       ACTIVE\nq2       ACTIVE\n", users)

	short := strings.Join(strings.Split(ids.String(), "\n")[:5], "\n") + "\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "short.ids"), []byte(short), 0o644))
	code, _, errOut := cli(t, nil, "import", "--data", data, "--collection", "e", "--create", "--ids", filepath.Join(dir, "short.ids"), filepath.Join(dir, "all.npy"))
	require.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "all.npy:row 6: ")
	assert.Contains(t, errOut, "has 5 lines, fewer than the 12 rows")
}

func TestUsersListPaging(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	const n = 23
	// Users created in an order unlike their names' order; some with faces.
	var recs []records.JSON
	var want []string
	for k := range n {
		id := fmt.Sprintf("user-%02d", (k*5)%n)
		want = append(want, id)
		r := records.JSON{UserID: id}
		if k%2 == 0 {
			r.Embedding = []float32{float32(k + 1), 1}
		}
		recs = append(recs, r)
	}
	src := filepath.Join(dir, "users.jsonl")
	writeLines(t, src, recs)
	cliOK(t, "import", "--data", data, "--collection", "c", "--create", src)

	for _, maxItems := range []int{0, 1, 7, n, 40} {
		for _, pageSize := range []int{0, 1, 5, 500} {
			for _, output := range []string{"json", "table"} {
				t.Run(fmt.Sprintf("max-items=%d/page-size=%d/%s", maxItems, pageSize, output), func(t *testing.T) {
					var got []string
					token := ""
					for calls := 0; ; calls++ {
						require.Less(t, calls, n+2, "the walk does not end")
						args := []string{"users", "list", "--data", data, "--collection", "c", "--output", output}
						if maxItems > 0 {
							args = append(args, "--max-items", fmt.Sprint(maxItems))
						}
						if pageSize > 0 {
							args = append(args, "--page-size", fmt.Sprint(pageSize))
						}
						if token != "" {
							args = append(args, "--starting-token", token)
						}
						users, next := parseUsersList(t, output, cliOK(t, args...))
						if maxItems > 0 {
							require.LessOrEqual(t, len(users), maxItems)
						}
						got = append(got, users...)
						if next == "" {
							break
						}
						token = next
					}
					require.Equal(t, want, got, "every user once, in primary-key order")
				})
			}
		}
	}

	t.Run("refusals", func(t *testing.T) {
		for _, args := range [][]string{
			{"users", "list", "--data", data},
			{"users", "list", "--data", data, "--collection", "c", "--page-size", "0"},
			{"users", "list", "--data", data, "--collection", "c", "--page-size", "501"},
			{"users", "list", "--data", data, "--collection", "c", "--max-items", "-1"},
			{"users", "list", "--data", data, "--collection", "c", "--output", "yaml"},
			{"users", "--data", data, "--collection", "c"},
		} {
			code, _, _ := cli(t, nil, args...)
			assert.Equal(t, exitUsage, code, "%v", args)
		}
		code, _, errOut := cli(t, nil, "users", "list", "--data", data, "--collection", "c", "--starting-token", "bogus")
		assert.Equal(t, exitFailure, code)
		assert.Contains(t, errOut, engine.CodeInvalidPaginationToken)
		code, _, errOut = cli(t, nil, "users", "list", "--data", data, "--collection", "nope")
		assert.Equal(t, exitFailure, code)
		assert.Contains(t, errOut, engine.CodeResourceNotFound)
	})
}

func parseUsersList(t *testing.T, output, s string) (users []string, next string) {
	t.Helper()
	if output == "json" {
		var out usersOutput
		require.NoError(t, json.Unmarshal([]byte(s), &out))
		for _, u := range out.Users {
			users = append(users, u.UserId)
		}
		return users, out.NextToken
	}
	lines := strings.Split(strings.TrimSpace(s), "\n")
	require.Equal(t, "USER_ID  STATUS", strings.TrimSpace(lines[0]))
	for _, l := range lines[1:] {
		if tok, ok := strings.CutPrefix(l, "NextToken: "); ok {
			next = tok
			continue
		}
		users = append(users, strings.Fields(l)[0])
	}
	return users, next
}

func TestSearchAndDescribe(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	src := filepath.Join(dir, "people.jsonl")
	writeLines(t, src, people(30, 4, 64, 3))
	cliOK(t, "import", "--data", data, "--collection", "staff", "--create", "--similarity", "cosine", src)

	out := cliOK(t, "describe", "--data", data)
	assert.Regexp(t, `(?m)^staff\s+64\s+cosine\s+120\s+31\s+`, out)
	var infos []collectionInfo
	require.NoError(t, json.Unmarshal([]byte(cliOK(t, "describe", "--data", data, "--collection", "staff", "--output", "json")), &infos))
	require.Len(t, infos, 1)
	assert.Equal(t, collectionInfo{CollectionId: "staff", CollectionARN: infos[0].CollectionARN, Dimension: 64, Similarity: "cosine",
		FaceCount: 120, UserCount: 31, Created: infos[0].Created}, infos[0])

	// A fresh photo of person 4 finds person 4 first.
	g := bench.NewGenerator(bench.GenConfig{Identities: 30, FacesPerIdentity: 4, Dim: 64, IntraCosine: 0.7, Seed: 3})
	probe := filepath.Join(dir, "probe.npy")
	require.NoError(t, os.WriteFile(probe, npy.EncodeVector(g.Probe(4, 0)), 0o644))
	var su engine.SearchUsersByImageOutput
	require.NoError(t, json.Unmarshal([]byte(cliOK(t, "search", "users", "--data", data, "--collection", "staff", "--vector", probe, "--threshold", "30", "--output", "json")), &su))
	require.NotEmpty(t, su.UserMatches)
	assert.Equal(t, "person-4", su.UserMatches[0].User.UserId)
	out = cliOK(t, "search", "users", "--data", data, "--collection", "staff", "--vector", probe, "--threshold", "30", "--max", "1")
	assert.Regexp(t, `(?m)^1\s+person-4\s+ACTIVE\s+\d+\.\d\d$`, out)

	// From a user: the user itself is left out.
	var byUser engine.SearchUsersOutput
	require.NoError(t, json.Unmarshal([]byte(cliOK(t, "search", "users", "--data", data, "--collection", "staff", "--user-id", "person-4", "--threshold", "0", "--max", "500", "--output", "json")), &byUser))
	assert.Len(t, byUser.UserMatches, 29, "every other user with faces")

	// From a face: faces of the same person come first.
	recs := parseExport(t, cliOK(t, "export", "--data", data, "--collection", "staff"))
	var face records.JSON
	for _, r := range recs {
		if r.UserID == "person-4" && r.Embedding != nil {
			face = r
			break
		}
	}
	var sf engine.SearchFacesOutput
	require.NoError(t, json.Unmarshal([]byte(cliOK(t, "search", "faces", "--data", data, "--collection", "staff", "--face-id", face.FaceID, "--threshold", "30", "--max", "3", "--output", "json")), &sf))
	require.Len(t, sf.FaceMatches, 3)
	for _, fm := range sf.FaceMatches {
		assert.Equal(t, "person-4", fm.Face.UserId)
		assert.NotEqual(t, face.FaceID, fm.Face.FaceId)
	}
	out = cliOK(t, "search", "faces", "--data", data, "--collection", "staff", "--face-id", face.FaceID, "--threshold", "99.9")
	assert.Equal(t, "no faces at or above similarity 99.9\n", out)

	for _, args := range [][]string{
		{"search", "users", "--data", data, "--collection", "staff"},
		{"search", "users", "--data", data, "--collection", "staff", "--face-id", face.FaceID, "--user-id", "person-4"},
		{"search", "faces", "--data", data, "--collection", "staff", "--user-id", "person-4"},
		{"search", "people", "--data", data, "--collection", "staff", "--user-id", "person-4"},
		{"search", "users", "--data", data, "--collection", "staff", "--user-id", "person-4", "--threshold", "101"},
	} {
		code, _, _ := cli(t, nil, args...)
		assert.Equal(t, exitUsage, code, "%v", args)
	}
	code, _, errOut := cli(t, nil, "search", "users", "--data", data, "--collection", "staff", "--user-id", "nobody")
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, engine.CodeResourceNotFound)
}

func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	data, copyDir := filepath.Join(dir, "data"), filepath.Join(dir, "backups", "copy")
	src := filepath.Join(dir, "people.jsonl")
	writeLines(t, src, people(10, 3, 16, 4))
	cliOK(t, "import", "--data", data, "--collection", "staff", "--create", src)
	out := cliOK(t, "backup", "--data", data, "--to", copyDir)
	assert.Contains(t, out, "backed up")
	// Restore is opening the copy: it holds the same collection.
	assert.Equal(t, cliOK(t, "export", "--data", data, "--collection", "staff"), cliOK(t, "export", "--data", copyDir, "--collection", "staff"))
	assert.Equal(t, cliOK(t, "describe", "--data", data), cliOK(t, "describe", "--data", copyDir))

	code, _, errOut := cli(t, nil, "backup", "--data", data, "--to", copyDir)
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "already exists")
	code, _, errOut = cli(t, nil, "backup", "--data", filepath.Join(dir, "none"), "--to", filepath.Join(dir, "x"))
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "no facesearch store")
	code, _, _ = cli(t, nil, "backup", "--data", data)
	assert.Equal(t, exitUsage, code)
}

// TestStoreInUse runs every offline command against a store another
// holder (here this process's engine; across processes it is the file
// lock) has open: each refuses with advice, changing nothing.
func TestStoreInUse(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	src := filepath.Join(dir, "people.jsonl")
	writeLines(t, src, people(3, 2, 8, 5))
	cliOK(t, "import", "--data", data, "--collection", "staff", "--create", src)
	e, err := engine.Open(data, nil)
	require.NoError(t, err)
	defer e.Close()
	probe := filepath.Join(dir, "probe.npy")
	require.NoError(t, os.WriteFile(probe, npy.EncodeVector(make([]float32, 8)), 0o644))
	for _, args := range [][]string{
		{"import", "--data", data, "--collection", "staff", src},
		{"import", "--data", data, "--collection", "staff", "--dry-run", src},
		{"export", "--data", data, "--collection", "staff"},
		{"users", "list", "--data", data, "--collection", "staff"},
		{"search", "users", "--data", data, "--collection", "staff", "--user-id", "person-1"},
		{"describe", "--data", data},
	} {
		code, _, errOut := cli(t, nil, args...)
		assert.Equal(t, exitFailure, code, "%v", args)
		assert.Contains(t, errOut, "in use by another process", "%v", args)
		assert.Contains(t, errOut, "Stop the server first", "%v", args)
	}
	// backup asks the holder to write the copy; this holder is no server.
	code, _, errOut := cli(t, nil, "backup", "--data", data, "--to", filepath.Join(dir, "copy"))
	assert.Equal(t, exitFailure, code)
	assert.Contains(t, errOut, "no server answers on the store's admin socket")
	assert.NoDirExists(t, filepath.Join(dir, "copy"))
}

func TestHelpAndUsage(t *testing.T) {
	for _, cmd := range [][]string{{"import"}, {"export"}, {"users"}, {"search"}, {"eval"}, {"backup"}, {"describe"}} {
		t.Run(cmd[0], func(t *testing.T) {
			code, out, errOut := cli(t, nil, append(cmd, "-h")...)
			assert.Equal(t, exitOK, code)
			assert.Empty(t, out)
			assert.Contains(t, errOut, "Usage: facesearch "+cmd[0])
			assert.Contains(t, errOut, "Examples:\n  facesearch "+cmd[0])
			if cmd[0] != "eval" { // eval works in a store of its own
				assert.Contains(t, errOut, "-data")
			}
			code, _, _ = cli(t, nil, append(cmd, "--no-such-flag")...)
			assert.Equal(t, exitUsage, code)
		})
	}
}

func TestEval(t *testing.T) {
	const ids, faces, dim, enroll = 300, 6, 64, 2
	g := bench.NewGenerator(bench.GenConfig{Identities: ids, FacesPerIdentity: faces, Dim: dim, IntraCosine: 0.5, Seed: 7})
	dir := t.TempDir()
	labels := filepath.Join(dir, "labels.jsonl")
	var b bytes.Buffer
	all := make([][][]float32, ids)
	for i := range ids {
		all[i] = g.Faces(i)
		for _, v := range all[i] {
			line, err := json.Marshal(map[string]any{"identity": fmt.Sprintf("person %d", i), "embedding": v, "path": "ignored"})
			require.NoError(t, err)
			b.Write(append(line, '\n'))
		}
	}
	require.NoError(t, os.WriteFile(labels, b.Bytes(), 0o644))

	// The numbers computed here independently, in float64: users are the
	// normalized mean of each identity's first two faces, the other four
	// probe.
	users := make([][]float64, ids)
	for i := range ids {
		users[i] = make([]float64, dim)
		for _, v := range all[i][:enroll] {
			u := unit64(v)
			for k := range dim {
				users[i][k] += u[k]
			}
		}
		users[i] = unit64f(users[i])
	}
	var genuine, impostor []float64
	identified := 0
	for i := range ids {
		for _, v := range all[i][enroll:] {
			p := unit64(v)
			best, bestUser := math.Inf(-1), -1
			for u := range ids {
				s := dot64(p, users[u])
				if s > best {
					best, bestUser = s, u
				}
				if u == i {
					genuine = append(genuine, s)
				} else {
					impostor = append(impostor, s)
				}
			}
			if bestUser == i {
				identified++
			}
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(impostor)))
	type point struct{ cos, tar float64 }
	var want []point
	for _, far := range []float64{1e-2, 1e-3, 1e-4} {
		k := int(math.Floor(far * float64(len(impostor))))
		th := impostor[k]
		n := 0
		for _, s := range genuine {
			if s > th {
				n++
			}
		}
		want = append(want, point{th, float64(n) / float64(len(genuine))})
	}
	wantRate := float64(identified) / float64(len(genuine))

	t.Run("every identity enrolled", func(t *testing.T) {
		plot := filepath.Join(dir, "eval.png")
		var rep evalReport
		out := cliOK(t, "eval", "--labels", labels, "--impostors", "0", "--plot", plot, "--output", "json")
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.Equal(t, ids, rep.Identities)
		assert.Equal(t, ids*faces, rep.Embeddings)
		assert.Equal(t, len(genuine), rep.GenuineProbes)
		assert.EqualValues(t, len(impostor), rep.ImpostorPairs)
		onePair := 1.5 / float64(len(genuine)) // a score within rounding of the threshold
		assert.InDelta(t, wantRate, rep.IdentificationRate, onePair)
		require.Len(t, rep.OperatingPoints, 3)
		for i, p := range rep.OperatingPoints {
			assert.InDelta(t, want[i].cos, p.Cosine, 1e-5, "the cosine at FAR %g", p.FAR)
			assert.InDelta(t, want[i].tar, p.TAR, onePair, "the TAR at FAR %g", p.FAR)
			assert.LessOrEqual(t, p.AchievedFAR, p.FAR)
			assert.Nil(t, p.StrangersMatched)
		}
		// A model this weak: about 0.3 at FAR 1e-2 (2.3 sigma of 1/sqrt(64)).
		assert.InDelta(t, 0.29, rep.OperatingPoints[0].Cosine, 0.03)
		assertPNG(t, plot)
		assertCurve(t, rep)
	})

	t.Run("strangers held out", func(t *testing.T) {
		var rep evalReport
		plot := filepath.Join(dir, "strangers.png")
		out := cliOK(t, "eval", "--labels", labels, "--impostors", "0.2", "--seed", "3", "--plot", plot, "--output", "json")
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		assert.Equal(t, 60, rep.StrangerIdentities)
		assert.Equal(t, 60*faces, rep.StrangerProbes)
		assert.Equal(t, 240, rep.Users)
		assert.Equal(t, 240*(faces-enroll), rep.GenuineProbes)
		assert.EqualValues(t, 240*(faces-enroll)*239+60*faces*240, rep.ImpostorPairs)
		// Other identities, the same distributions: the same numbers,
		// within sampling error.
		for i, p := range rep.OperatingPoints {
			assert.InDelta(t, want[i].cos, p.Cosine, 0.03, "the cosine at FAR %g", p.FAR)
			assert.InDelta(t, want[i].tar, p.TAR, 0.06, "the TAR at FAR %g", p.FAR)
			require.NotNil(t, p.StrangersMatched)
		}
		// A stranger's best match among 240 users passes FAR 1e-2 per pair
		// far more often than 1e-2: 1-(1-1e-2)^240 is about 0.9.
		assert.InDelta(t, 0.9, *rep.OperatingPoints[0].StrangersMatched, 0.1)
		assertPNG(t, plot)
		assertCurve(t, rep)
		// The same seed, the same split; the table says the same as JSON.
		table := cliOK(t, "eval", "--labels", labels, "--impostors", "0.2", "--seed", "3", "--plot", "")
		assert.Contains(t, table, fmt.Sprintf("%.2f%% rank-1", 100*rep.IdentificationRate))
		assert.Contains(t, table, rep.SuggestedSimilarity)
	})

	t.Run("refusals", func(t *testing.T) {
		for _, args := range [][]string{
			{"eval"},
			{"eval", "--labels", labels, "--enroll", "0"},
			{"eval", "--labels", labels, "--enroll", "101"},
			{"eval", "--labels", labels, "--impostors", "1"},
		} {
			code, _, _ := cli(t, nil, args...)
			assert.Equal(t, exitUsage, code, "%v", args)
		}
		code, _, errOut := cli(t, nil, "eval", "--labels", labels, "--enroll", "6", "--plot", "")
		assert.Equal(t, exitFailure, code)
		assert.Contains(t, errOut, "lower --enroll")
		bad := filepath.Join(dir, "bad.jsonl")
		for _, line := range []string{`{"embedding": [1, 0]}`, `{"identity": null, "embedding": [1, 0]}`, `{"identity": "", "embedding": [1, 0]}`} {
			require.NoError(t, os.WriteFile(bad, []byte(`{"identity": 7, "embedding": [1, 0]}`+"\n"+line+"\n"), 0o644))
			code, _, errOut = cli(t, nil, "eval", "--labels", bad)
			assert.Equal(t, exitFailure, code)
			assert.Contains(t, errOut, "bad.jsonl:2: no \"identity\"", line)
		}
	})
}

func assertPNG(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err)
	assert.Greater(t, img.Bounds().Dx(), 100)
	assert.Greater(t, img.Bounds().Dy(), 100)
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(10_000), "a plot, not a blank image")
}

// assertCurve checks the suggested curve against the contract: the engine
// takes it, and similarity 60/70/80 sit at the reported thresholds.
func assertCurve(t *testing.T, rep evalReport) {
	t.Helper()
	e, err := engine.Open(t.TempDir(), nil)
	require.NoError(t, err)
	defer e.Close()
	ctx := context.Background()
	_, err = e.CreateCollection(ctx, &engine.CreateCollectionInput{CollectionId: "c", Similarity: rep.SuggestedSimilarity})
	require.NoError(t, err, rep.SuggestedSimilarity)
	parts := strings.Split(rep.SuggestedSimilarity, ",")
	for i, p := range rep.OperatingPoints {
		want := fmt.Sprintf("%s:%g", strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", math.Ceil(p.Cosine*1e4)/1e4), "0"), "."), evalPercents[i])
		assert.Contains(t, parts, want)
	}
}

func unit64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return unit64f(out)
}

func unit64f(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	n := math.Sqrt(s)
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x / n
	}
	return out
}

func dot64(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func TestProgressLine(t *testing.T) {
	start := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	var b bytes.Buffer
	p := newProgress(&b, "records", 1000, false)
	p.nowFn = func() time.Time { return now }
	p.start, p.last = start, start
	p.Tick(100, 10)
	assert.Empty(t, b.String(), "not before the first interval")
	now = start.Add(10 * time.Second)
	p.Tick(250, 5000)
	assert.Equal(t, " 25%  5000 records  500 records/s  ETA 30s\n", b.String())
	p.tty, p.every = true, 100*time.Millisecond
	b.Reset()
	now = now.Add(time.Second)
	p.Tick(500, 11000)
	assert.Equal(t, "\r[===============>              ]  50%  11000 records  1.0k records/s  ETA 11s\x1b[K", b.String())
	p.Done()
	assert.True(t, strings.HasSuffix(b.String(), "\r\x1b[K"))

	quiet := newProgress(&b, "records", 0, true)
	b.Reset()
	quiet.Tick(1, 1)
	assert.Empty(t, b.String())
	unknown := newProgress(&b, "records", 0, false)
	unknown.start = start
	assert.Equal(t, "7 records  7 records/s", unknown.line(start.Add(time.Second), 0, 7), "no percentage nor ETA without a total")
}
