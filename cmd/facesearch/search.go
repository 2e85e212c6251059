package main

import (
	"context"
	"fmt"
	"github.com/facesearch/facesearch/internal/npy"
	"io"
	"os"

	"github.com/facesearch/facesearch/engine"
)

const searchSynopsis = `users|faces --collection C (--face-id ID | --user-id ID | --vector FILE.npy | --queries FILE) [--threshold T] [--max N] [--output table|json]

search users finds the users most like a face of the collection (--face-id),
a user (--user-id, left out of its own results) or an embedding (--vector, a
.npy of shape (d,) or (n, d) whose first row is searched; - reads standard
input). search faces finds faces alike, from --face-id or --vector.
Results are highest similarity first, at or above --threshold (a percentage
on the collection's similarity curve; default 80).

--queries searches with every probe of a FILE at once, in batches that
score many probes per pass over the collection: an (n, d) .npy, or JSON
Lines of records with an "embedding" (as import reads them; - is standard
input). It writes one JSON line per probe, in input order: its "Probe"
number (from 0), its "ExternalImageId" if it has one, and the search's
result, exactly what --vector gives for that probe.`

func (m *Main) search(ctx context.Context, args []string) error {
	fs := m.newFlagSet("search", searchSynopsis, examples(
		"facesearch search users --collection staff --vector probe.npy",
		"facesearch search users --collection staff --user-id alice --threshold 60 --max 5",
		"facesearch search faces --collection staff --face-id 8f3c2a1e-0b4d-4c55-9a7e-2f1d3c4b5a69 --output json",
		"facesearch search users --collection staff --queries probes.npy > results.jsonl",
	))
	data := addDataFlag(fs)
	coll := addCollectionFlag(fs, "the collection `C` to search (required)")
	faceID := fs.String("face-id", "", "search with this face's `ID`")
	userID := fs.String("user-id", "", "search with this user's vector (search users only)")
	vector := fs.String("vector", "", "search with the embedding in this .npy `FILE` (- is standard input)")
	queries := fs.String("queries", "", "search with every probe of this .npy or JSON Lines `FILE`, one JSON line out per probe (- is standard input)")
	quiet := fs.Bool("quiet", false, "no progress output (--queries)")
	threshold := fs.Float64("threshold", 80, "the least similarity (`percent`, 0-100) to report")
	maxResults := fs.Int("max", 10, "report at most `N` matches (users: 1-500, faces: 1-4096)")
	output := addOutputFlag(fs)
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fs.Usage()
		return nil
	}
	if len(args) == 0 || (args[0] != "users" && args[0] != "faces") {
		return usageErrorf(fs, "want what to search: users or faces")
	}
	what := args[0]
	rest, err := parseArgs(fs, args[1:])
	if err != nil {
		return err
	}
	given := 0
	for _, s := range []string{*faceID, *userID, *vector, *queries} {
		if s != "" {
			given++
		}
	}
	switch {
	case len(rest) > 0:
		return usageErrorf(fs, "unexpected argument %q", rest[0])
	case *coll == "":
		return usageErrorf(fs, "--collection is required")
	case given != 1:
		return usageErrorf(fs, "give exactly one of --face-id, --user-id, --vector and --queries")
	case what == "faces" && *userID != "":
		return usageErrorf(fs, "search faces takes --face-id or --vector; --user-id is for search users")
	case !(*threshold >= 0 && *threshold <= 100):
		return usageErrorf(fs, "--threshold is %g; want 0 to 100", *threshold)
	case *maxResults < 1:
		return usageErrorf(fs, "--max is %d; want 1 or more", *maxResults)
	case *queries != "" && flagWasSet(fs, "output") && *output != "json":
		return usageErrorf(fs, "--queries writes JSON Lines; --output table is for one search")
	}
	if err := checkOutput(fs, *output); err != nil {
		return err
	}
	var vec []float32
	if *vector != "" {
		var rows int
		if vec, rows, err = readVector(*vector, m.Stdin); err != nil {
			return err
		}
		if rows > 1 {
			fmt.Fprintf(m.Stderr, "facesearch search: %s has %d rows; searching with the first\n", *vector, rows)
		}
	}
	e, err := openStore(*data, true)
	if err != nil {
		return err
	}
	defer e.Close()
	th, n := float32(*threshold), int32(*maxResults)
	if *queries != "" {
		return m.searchQueries(ctx, e, what, *coll, *queries, th, n, *quiet)
	}

	if what == "users" {
		var matches []engine.UserMatch
		var out any
		switch {
		case vec != nil:
			o, err := e.SearchUsersByImage(ctx, &engine.SearchUsersByImageInput{CollectionId: *coll, Vector: vec, UserMatchThreshold: &th, MaxUsers: &n})
			if err != nil {
				return err
			}
			matches, out = o.UserMatches, o
		default:
			o, err := e.SearchUsers(ctx, &engine.SearchUsersInput{CollectionId: *coll, FaceId: *faceID, UserId: *userID, UserMatchThreshold: &th, MaxUsers: &n})
			if err != nil {
				return err
			}
			matches, out = o.UserMatches, o
		}
		if *output == "json" {
			return writeJSON(m.Stdout, out)
		}
		if len(matches) == 0 {
			fmt.Fprintf(m.Stdout, "no users at or above similarity %g\n", *threshold)
			return nil
		}
		tw := newTable(m.Stdout)
		fmt.Fprintln(tw, "RANK\tUSER_ID\tSTATUS\tSIMILARITY")
		for i, u := range matches {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%.2f\n", i+1, u.User.UserId, u.User.UserStatus, u.Similarity)
		}
		return tw.Flush()
	}

	var matches []engine.FaceMatch
	var out any
	if vec != nil {
		o, err := e.SearchFacesByImage(ctx, &engine.SearchFacesByImageInput{CollectionId: *coll, Vector: vec, FaceMatchThreshold: &th, MaxFaces: &n})
		if err != nil {
			return err
		}
		matches, out = o.FaceMatches, o
	} else {
		o, err := e.SearchFaces(ctx, &engine.SearchFacesInput{CollectionId: *coll, FaceId: *faceID, FaceMatchThreshold: &th, MaxFaces: &n})
		if err != nil {
			return err
		}
		matches, out = o.FaceMatches, o
	}
	if *output == "json" {
		return writeJSON(m.Stdout, out)
	}
	if len(matches) == 0 {
		fmt.Fprintf(m.Stdout, "no faces at or above similarity %g\n", *threshold)
		return nil
	}
	tw := newTable(m.Stdout)
	fmt.Fprintln(tw, "RANK\tFACE_ID\tEXTERNAL_IMAGE_ID\tUSER_ID\tSIMILARITY")
	for i, f := range matches {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.2f\n", i+1, f.Face.FaceId, dash(f.Face.ExternalImageId), dash(f.Face.UserId), f.Similarity)
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// readVector reads the first row of a .npy file ("-" is standard input)
// and how many rows it has.
func readVector(path string, stdin io.Reader) ([]float32, int, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, 0, err
		}
		defer f.Close()
		r = f
	}
	nr, err := npy.NewReader(r)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	n, dim := nr.Shape()
	v := make([]float32, dim)
	if err := nr.Next(v); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return v, n, nil
}
