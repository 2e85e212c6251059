package main

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/facesearch/facesearch/engine"
)

const describeSynopsis = `[--collection C] [--output table|json]

Shows the store's collections (or one) with their embedding dimension,
similarity curve, face and user counts and creation time.`

// collectionInfo is one collection in describe's output.
type collectionInfo struct {
	CollectionId  string    `json:"CollectionId"`
	CollectionARN string    `json:"CollectionARN"`
	Dimension     int       `json:"Dimension"`
	Similarity    string    `json:"Similarity"`
	FaceCount     int64     `json:"FaceCount"`
	UserCount     int64     `json:"UserCount"`
	Created       time.Time `json:"CreationTimestamp"`
}

func (m *Main) describe(ctx context.Context, args []string) error {
	fs := m.newFlagSet("describe", describeSynopsis, examples(
		"facesearch describe",
		"facesearch describe --data /var/lib/facesearch --collection staff --output json",
	))
	data := addDataFlag(fs)
	coll := addCollectionFlag(fs, "describe only collection `C`")
	output := addOutputFlag(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := checkOutput(fs, *output); err != nil {
		return err
	}
	e, err := openStore(*data, true)
	if err != nil {
		return err
	}
	defer e.Close()
	ids := []string{*coll}
	if *coll == "" {
		ids = nil
		in := &engine.ListCollectionsInput{}
		for {
			out, err := e.ListCollections(ctx, in)
			if err != nil {
				return err
			}
			ids = append(ids, out.CollectionIds...)
			if out.NextToken == "" {
				break
			}
			in.NextToken = out.NextToken
		}
	}
	infos := []collectionInfo{}
	for _, id := range ids {
		d, err := e.DescribeCollection(ctx, &engine.DescribeCollectionInput{CollectionId: id})
		if err != nil {
			return err
		}
		infos = append(infos, collectionInfo{CollectionId: id, CollectionARN: d.CollectionARN, Dimension: d.Dimension,
			Similarity: d.Similarity, FaceCount: d.FaceCount, UserCount: d.UserCount, Created: d.CreationTimestamp.Time})
	}
	if *output == "json" {
		return writeJSON(m.Stdout, infos)
	}
	if len(infos) == 0 {
		fmt.Fprintf(m.Stdout, "no collections in %s\n", *data)
		return nil
	}
	tw := newTable(m.Stdout)
	fmt.Fprintln(tw, "COLLECTION\tDIMENSION\tSIMILARITY\tFACES\tUSERS\tCREATED")
	for _, c := range infos {
		dim := strconv.Itoa(c.Dimension)
		if c.Dimension == 0 {
			dim = "- (first face fixes it)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\n", c.CollectionId, dim, c.Similarity, c.FaceCount, c.UserCount, c.Created.Format(time.RFC3339))
	}
	return tw.Flush()
}
