package store

import (
	"encoding/binary"
	"fmt"
)

// keyFormat holds the store's layout version. Stores without it were
// written before vectors moved out of face records (layout 1).
var keyFormat = []byte("sys/format")

// storeFormat is this release's layout: face records without vectors,
// vectors under v/<coll>/<seq>.
const storeFormat = 2

// upgrade brings a store of an earlier layout to this one: it rewrites
// every face record that still holds its vector as a record and a vector,
// then records the layout. Each batch is atomic and rewrites whole faces,
// so a crash midway leaves a store that the next Open finishes upgrading.
func (s *Store) upgrade() error {
	v, ok, err := s.get(keyFormat)
	if err != nil {
		return err
	}
	if ok && len(v) == 8 && binary.BigEndian.Uint64(v) >= storeFormat {
		return nil
	}
	var colls []string
	if err := s.scan(prefixColl, func(k, _ []byte) error {
		colls = append(colls, string(k[len(prefixColl):]))
		return nil
	}); err != nil {
		return err
	}
	b := s.NewBatch()
	defer func() { b.Close() }()
	for _, coll := range colls {
		prefix := collPrefix(coll, 'f')
		err := s.scan(prefix, func(k, v []byte) error {
			if len(v) == 0 || v[0] != formatV1 {
				return nil
			}
			f, err := decodeFaceV1(string(k[len(prefix):]), v)
			if err != nil {
				return nil // left as it is, for Open to report
			}
			b.PutFace(coll, f)
			if b.Size() >= 4<<20 {
				if err := b.Commit(false); err != nil {
					return err
				}
				b = s.NewBatch()
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: upgrade the faces of %s: %w", coll, err)
		}
	}
	b.set(keyFormat, binary.BigEndian.AppendUint64(nil, storeFormat))
	if err := b.Commit(true); err != nil {
		return fmt.Errorf("store: upgrade: %w", err)
	}
	return nil
}

// decodeFaceV1 decodes a face record of layout 1, vector included.
func decodeFaceV1(id string, v []byte) (*Face, error) {
	d := decoder{b: v, kind: "face", id: id}
	d.version()
	f := &Face{ID: id}
	f.Seq = d.uvarint("face seq")
	f.ImageID = d.str("face image id")
	f.ExternalImageID = d.str("face external image id")
	f.UserID = d.str("face user id")
	n := d.uvarint("face dim")
	if d.err == nil && n*4 != uint64(len(d.b)) {
		d.err = fmt.Errorf("%w: face %s says %d dims but holds %d bytes", ErrCorrupt, id, n, len(d.b))
	}
	if d.err != nil {
		return nil, d.err
	}
	f.Vector = decodeVector(nil, d.b)
	return f, nil
}
