package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/stretchr/testify/require"
)

// ingestFaces puts a collection, n faces from sequence first on, each of
// its own user, into an ingest batch and commits it.
func ingestFaces(t *testing.T, s *Store, first uint64, n int) []*Face {
	t.Helper()
	r := rand.New(rand.NewPCG(first, 7))
	b := s.NewIngestBatch()
	b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 4, Similarity: "cosine", LastUserPK: first + uint64(n)})
	var faces []*Face
	for i := range n {
		seq := first + uint64(i)
		f := &Face{ID: fmt.Sprintf("%08x-0000-4000-8000-%012x", r.Uint32(), seq), Seq: seq, ImageID: "img",
			UserID: fmt.Sprint("u", seq), Vector: []float32{r.Float32(), r.Float32(), r.Float32(), r.Float32()}}
		b.PutUser("c", User{ID: f.UserID, PK: seq})
		b.PutFace("c", f)
		faces = append(faces, f)
	}
	require.NoError(t, b.Commit(false))
	return faces
}

// readFaces is every face of collection c, by ID.
func readFaces(t *testing.T, s *Store) map[string]*Face {
	t.Helper()
	got := map[string]*Face{}
	for f, err := range s.Faces("c") {
		require.NoError(t, err)
		got[f.ID] = f
	}
	return got
}

// TestIngestBatch: an ingest batch's records read back like a batch's, and
// its vectors land in the bottom level, batch after batch, so no compaction
// has to rewrite them; so do they when cut into tables written side by side.
func TestIngestBatch(t *testing.T) {
	t.Run("one vector table", func(t *testing.T) { testIngestBatch(t, 0, 1) })
	t.Run("vector tables side by side", func(t *testing.T) {
		if runtime.GOMAXPROCS(0) < 2 {
			t.Skip("one core: the tables are not cut")
		}
		testIngestBatch(t, 1, runtime.GOMAXPROCS(0))
	})
}

// testIngestBatch ingests 3 batches, with ingestSplitBytes split (unless 0),
// each of which must make perBatch vector tables.
func testIngestBatch(t *testing.T, split, perBatch int) {
	s := openStore(t, t.TempDir())
	if split > 0 {
		s.ingestSplitBytes = split
	}
	want := map[string]*Face{}
	for round := range 3 {
		for _, f := range ingestFaces(t, s, uint64(1+round*500), 500) {
			want[f.ID] = f
		}
		require.Equal(t, want, readFaces(t, s), "round %d", round)

		tables, err := s.db.SSTables()
		require.NoError(t, err)
		vectorTables, pkTables, faceTables := 0, 0, 0
		for level, ts := range tables {
			for _, tbl := range ts {
				switch string(tableGroup(tbl.Smallest.UserKey)) {
				case "v/":
					vectorTables++
					require.Equal(t, len(tables)-1, level, "vector table %s", tbl.FileNum)
				case "c/c/k/": // primary keys, handed out in order, as sequences are
					pkTables++
					require.Equal(t, len(tables)-1, level, "primary-key table %s", tbl.FileNum)
				case "c/c/s/": // face records, keyed by sequence
					faceTables++
					require.Equal(t, len(tables)-1, level, "face record table %s", tbl.FileNum)
				}
			}
		}
		require.Equal(t, (round+1)*perBatch, vectorTables)
		require.Equal(t, (round+1)*perBatch, pkTables)
		require.Equal(t, (round+1)*perBatch, faceTables)
		left, err := os.ReadDir(filepath.Join(s.dir, ingestDir))
		require.NoError(t, err)
		require.Empty(t, left, "every table written was ingested (none empty, none left behind)")
	}
	users, err := s.UserRecords("c")
	require.NoError(t, err)
	require.Len(t, users, 1500)
	m, ok, err := s.Collection("c")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, uint64(1501), m.LastUserPK, "the last batch's metadata")
}

func TestTableGroup(t *testing.T) {
	for k, want := range map[string]string{
		"v/c/\x00\x00\x00\x00\x00\x00\x00\x07": "v/",
		"col/c":                                "col/",
		"sys/secret":                           "sys/",
		"c/c/f/0f0e":                           "c/c/f/",
		"c/coll.2/u/bob":                       "c/coll.2/u/",
		"c/c/k/\x2f/\x2f":                      "c/c/k/",
		"c/c/t/op/tok":                         "c/c/t/",
		"c/c":                                  "c/",
		"c/c/":                                 "c/",
		"nothing":                              "nothing",
	} {
		require.Equal(t, want, string(tableGroup([]byte(k))), "%q", k)
	}
}

// TestGroupPuts: puts grouped by table come out as one sort of them all
// would put them (by key, the last put of a key winning), cut at the
// groups' bounds, whether a group arrives in order, shuffled or with
// repeated keys.
func TestGroupPuts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var kvs []kv
	put := func(k string) {
		kvs = append(kvs, kv{k: []byte(k), v: []byte(fmt.Sprint(len(kvs))), n: len(kvs)})
	}
	for i := range 3000 {
		put(fmt.Sprintf("v/c/%08d", i))               // in order
		put(fmt.Sprintf("c/c/f/%04x", r.IntN(1<<16))) // random, some repeated
		put(fmt.Sprintf("c/c/k/%08d", i/2))           // in order, each twice
		if i%7 == 0 {
			put(fmt.Sprintf("c/c/u/u%d", r.IntN(50))) // few keys, many puts
		}
		if i%1000 == 0 {
			put("col/c")
		}
	}
	var buf []kv
	// The second and third times in the buffer the first left, the third
	// with fewer puts.
	for _, n := range []int{len(kvs), len(kvs), len(kvs) / 3} {
		names := checkGroupPuts(t, kvs[:n], &buf)
		require.Equal(t, []string{"c/c/f/", "c/c/k/", "c/c/u/", "col/", "v/"}, names)
	}

	// c/ keys without a kind fall in the group c/, whose keys interleave
	// with the kinds': the puts are cut where the group changes instead.
	kvs = kvs[:0]
	for _, k := range []string{"c/z", "c/m/f/2", "c/a", "c/m/f/1", "c/m/f/2", "v/c/1"} {
		put(k)
	}
	names := checkGroupPuts(t, kvs, &buf)
	require.Equal(t, []string{"c/", "c/m/f/", "c/", "v/"}, names)
}

// checkGroupPuts checks groupPuts(kvs) against one sort of them all by key,
// the last put of a key winning, and returns the groups' names.
func checkGroupPuts(t *testing.T, kvs []kv, buf *[]kv) []string {
	t.Helper()
	want := slices.Clone(kvs)
	slices.SortStableFunc(want, func(x, y kv) int { return strings.Compare(string(x.k), string(y.k)) })
	var dedup []kv
	for i, e := range want {
		if i+1 < len(want) && string(want[i+1].k) == string(e.k) {
			continue // a later put of the key follows
		}
		dedup = append(dedup, e)
	}
	groups := groupPuts(slices.Clone(kvs), buf)
	var got []kv
	var names []string
	for i, g := range groups {
		require.NotEmpty(t, g)
		names = append(names, string(tableGroup(g[0].k)))
		for _, e := range g {
			require.Equal(t, names[i], string(tableGroup(e.k)), "%q in the group of %q", e.k, g[0].k)
		}
		if i > 0 {
			prev := groups[i-1]
			require.Less(t, string(prev[len(prev)-1].k), string(g[0].k), "groups %d and %d overlap", i-1, i)
		}
		got = append(got, g...)
	}
	require.Equal(t, len(dedup), len(got))
	for i := range dedup {
		require.Equal(t, string(dedup[i].k), string(got[i].k))
		require.Equal(t, string(dedup[i].v), string(got[i].v), "value of %q", got[i].k)
	}
	return names
}

// TestIngestBatchLaterPutWins: of several puts of one key, the last is
// what the store keeps, however many puts and keys the batch sorts.
func TestIngestBatchLaterPutWins(t *testing.T) {
	s := openStore(t, t.TempDir())
	r := rand.New(rand.NewPCG(11, 12))
	b := s.NewIngestBatch()
	last := map[string]uint64{}
	for pk := uint64(1); pk <= 5000; pk++ {
		id := fmt.Sprint("u", r.IntN(700))
		b.PutUser("c", User{ID: id, PK: pk})
		last[id] = pk
	}
	require.NoError(t, b.Commit(false))
	users, err := s.UserRecords("c")
	require.NoError(t, err)
	got := map[string]uint64{}
	for _, u := range users {
		got[u.ID] = u.PK
	}
	require.Equal(t, last, got)
}

// TestIngestBatchRefusesDeletes: an ingest batch takes puts only: it has
// no method that deletes, while a batch has each of them.
func TestIngestBatchRefusesDeletes(t *testing.T) {
	for _, name := range []string{"DeleteFace", "DeleteUser", "DeleteCollection"} {
		t.Run(name, func(t *testing.T) {
			_, ok := reflect.TypeFor[*Batch]().MethodByName(name)
			require.True(t, ok, "Batch.%s", name)
			_, ok = reflect.TypeFor[*IngestBatch]().MethodByName(name)
			require.False(t, ok, "IngestBatch.%s", name)
		})
	}
}

// TestIngestBatchDurable: a committed ingest batch survives a power cut
// that loses everything not synced, without a Sync of the store.
func TestIngestBatchDurable(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s, err := Open("/db", &Options{FS: fs})
	require.NoError(t, err)
	want := map[string]*Face{}
	for _, f := range ingestFaces(t, s, 1, 300) {
		want[f.ID] = f
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	require.NoError(t, s.Close())

	s, err = Open("/db", &Options{FS: crashed})
	require.NoError(t, err)
	defer s.Close()
	require.Equal(t, want, readFaces(t, s))
}

// TestOpenClearsIngestLeftovers: tables an interrupted ingest left behind
// are removed at Open.
func TestOpenClearsIngestLeftovers(t *testing.T) {
	fs := vfs.NewMem()
	s, err := Open("/db", &Options{FS: fs})
	require.NoError(t, err)
	require.NoError(t, s.Close())
	require.NoError(t, fs.MkdirAll("/db/ingest", 0o755))
	f, err := fs.Create("/db/ingest/00000001.sst", vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s, err = Open("/db", &Options{FS: fs})
	require.NoError(t, err)
	defer s.Close()
	_, err = fs.Stat("/db/ingest/00000001.sst")
	require.Error(t, err, "the leftover table is gone")
}

// pauseLinkFS pauses the first hard link into a path containing "ckpt" (a
// checkpoint linking its tables) until release is closed.
type pauseLinkFS struct {
	vfs.FS
	entered, release chan struct{}
	once             sync.Once
}

func (fs *pauseLinkFS) Link(oldname, newname string) error {
	if strings.Contains(newname, "ckpt") {
		fs.once.Do(func() {
			close(fs.entered)
			<-fs.release
		})
	}
	return fs.FS.Link(oldname, newname)
}

// TestCheckpointDuringIngest: an ingest that would finish while a
// checkpoint runs, followed by a write that builds on it (a new owner for
// the imported face), must not give a checkpoint that holds the write but
// not the face.
func TestCheckpointDuringIngest(t *testing.T) {
	dir := t.TempDir()
	fs := &pauseLinkFS{FS: vfs.Default, entered: make(chan struct{}), release: make(chan struct{})}
	s, err := Open(dir+"/db", &Options{FS: fs})
	require.NoError(t, err)
	defer s.Close()
	b := s.NewBatch()
	b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 4, Similarity: "cosine", LastUserPK: 1})
	b.PutUser("c", User{ID: "u", PK: 1})
	require.NoError(t, b.Commit(true))
	require.NoError(t, s.db.Flush()) // a table, so that the checkpoint links one

	checkpointed := make(chan error)
	go func() { checkpointed <- s.Checkpoint(dir + "/ckpt") }()
	<-fs.entered
	f := &Face{ID: "aaaaaaaa-0000-4000-8000-000000000001", Seq: 1, ImageID: "img", Vector: []float32{1, 0, 0, 0}}
	ingested := make(chan error)
	go func() {
		ib := s.NewIngestBatch()
		ib.PutFace("c", f)
		ingested <- ib.Commit(true)
	}()
	associate := func() {
		f.UserID = "u"
		nb := s.NewBatch()
		nb.UpdateFace("c", f)
		require.NoError(t, nb.Commit(true))
	}
	select {
	case err := <-ingested: // the ingest did not wait for the checkpoint
		require.NoError(t, err)
		associate()
		close(fs.release)
	case <-time.After(200 * time.Millisecond):
		close(fs.release)
		require.NoError(t, <-ingested)
		associate()
	}
	require.NoError(t, <-checkpointed)

	cp, err := Open(dir+"/ckpt", nil)
	require.NoError(t, err)
	defer cp.Close()
	for f, err := range cp.Faces("c") {
		require.NoError(t, err, "face %v: the checkpoint holds a write without the ingest it builds on", f)
	}
}

// TestRefusedOpenLeavesIngestTables: an Open refused because another
// process holds the store does not touch that process's ingest tables.
func TestRefusedOpenLeavesIngestTables(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	require.NoError(t, os.MkdirAll(filepath.Join(dir, ingestDir), 0o755))
	inFlight := filepath.Join(dir, ingestDir, "00000001.sst")
	require.NoError(t, os.WriteFile(inFlight, []byte("being written"), 0o644))
	_, err := Open(dir, nil)
	require.True(t, errors.Is(err, ErrLocked), "%v", err)
	_, err = os.Stat(inFlight)
	require.NoError(t, err)
	require.NoError(t, s.Close())
}

// TestIngestBatchesInOneArena: batches made one after another in one arena
// each store their own vectors.
func TestIngestBatchesInOneArena(t *testing.T) {
	s := openStore(t, t.TempDir())
	var a IngestArena
	want := map[string]*Face{}
	for round := range 3 {
		a.Reset()
		b := s.NewIngestBatchIn(&a)
		b.PutCollection(CollectionMeta{ID: "c", Seq: 1, Dim: 4, Similarity: "cosine"})
		for i := range 100 {
			seq := uint64(round*100 + i + 1)
			vec := []float32{float32(seq), float32(round), float32(i), 1}
			f := &Face{ID: fmt.Sprintf("00000000-0000-4000-8000-%012x", seq), Seq: seq, ImageID: "img", Vector: vec}
			b.PutFace("c", f)
			want[f.ID] = &Face{ID: f.ID, Seq: seq, ImageID: "img", Vector: slices.Clone(vec)}
		}
		require.NoError(t, b.Commit(true))
	}
	require.Equal(t, want, readFaces(t, s))
}
