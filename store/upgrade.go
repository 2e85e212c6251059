package store

import (
	"encoding/binary"
	"fmt"
)

// keyFormat holds the store's layout version. Stores without it were
// written before vectors moved out of face records (layout 1).
var keyFormat = []byte("sys/format")

// storeFormat is this release's layout: face records keyed by sequence
// (c/<coll>/s/<seq>), vectors under v/<coll>/<seq>. Layout 2 keyed face
// records by face ID (c/<coll>/f/<faceID>); layout 1 did too, with each
// vector inside its face's record.
const storeFormat = 3

// layout is the store's layout version (1 when the store has none).
func (s *Store) layout() (uint64, error) {
	v, ok, err := s.get(keyFormat)
	if err != nil || !ok {
		return 1, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: sys/format is %x", ErrCorrupt, v)
	}
	return binary.BigEndian.Uint64(v), nil
}

// upgrade brings a store of an earlier layout to this one: it moves every
// face record from under its face ID to under its sequence (taking the
// vector out of a record of layout 1), then records the layout. Each batch
// is atomic and moves whole faces, so a crash midway leaves a store that
// the next Open finishes upgrading.
func (s *Store) upgrade() error {
	if l, err := s.layout(); err != nil || l >= storeFormat {
		return err
	}
	colls, err := s.collectionIDs()
	if err != nil {
		return err
	}
	b := s.NewBatch()
	defer func() { b.Close() }()
	for _, coll := range colls {
		prefix := collPrefix(coll, 'f')
		// Two records of one sequence would land on one key, the second
		// erasing the first: refused, as Open refused them before. A record
		// already under its sequence was moved by an interrupted upgrade,
		// which deleted its old key in the same batch, so it cannot clash.
		moved := map[uint64]string{}
		err := s.scan(prefix, func(k, v []byte) error {
			id := string(k[len(prefix):])
			f, err := decodeLegacyFace(id, v)
			if err != nil {
				return err
			}
			other, dup := moved[f.Seq]
			if !dup {
				v, taken, err := s.get(faceKey(coll, f.Seq))
				if err != nil {
					return err
				}
				if taken {
					other, dup = "(unreadable)", true
					if g, err := decodeFace(f.Seq, v); err == nil {
						other = g.ID
					}
				}
			}
			if dup {
				return fmt.Errorf("%w: faces %s and %s share sequence %d", ErrCorrupt, other, id, f.Seq)
			}
			moved[f.Seq] = id
			if f.Vector != nil {
				b.PutFace(coll, f)
			} else {
				b.UpdateFace(coll, f)
			}
			b.del(legacyFaceKey(coll, id))
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

// checkLayout is upgrade for a read-only store: one of an earlier layout
// with collections cannot be read, and is refused.
func (s *Store) checkLayout() error {
	l, err := s.layout()
	if err != nil || l >= storeFormat {
		return err
	}
	colls, err := s.collectionIDs()
	if err != nil || len(colls) == 0 {
		return err
	}
	return fmt.Errorf("%w (layout %d, this release reads %d): open it once with write access to upgrade it", ErrOldLayout, l, storeFormat)
}

// collectionIDs returns the IDs of the collections that have metadata.
func (s *Store) collectionIDs() ([]string, error) {
	var colls []string
	err := s.scan(prefixColl, func(k, _ []byte) error {
		colls = append(colls, string(k[len(prefixColl):]))
		return nil
	})
	return colls, err
}

// decodeLegacyFace decodes a face record of layout 1 (vector inline) or 2
// (without it), keyed by face ID.
func decodeLegacyFace(id string, v []byte) (*Face, error) {
	d := decoder{b: v, kind: "face", id: id}
	layout := byte(formatV2)
	if len(v) > 0 && v[0] == formatV1 {
		layout = formatV1
	}
	d.versionOf(layout)
	f := &Face{ID: id}
	f.Seq = d.uvarint("face seq")
	f.ImageID = d.str("face image id")
	f.ExternalImageID = d.str("face external image id")
	f.UserID = d.str("face user id")
	if layout == formatV1 {
		n := d.uvarint("face dim")
		if d.err == nil && n*4 != uint64(len(d.b)) {
			d.err = fmt.Errorf("%w: face %s says %d dims but holds %d bytes", ErrCorrupt, id, n, len(d.b))
		}
		if d.err != nil {
			return nil, d.err
		}
		f.Vector = decodeVector(nil, d.b)
		d.b = nil
	}
	if err := d.done(); err != nil {
		return nil, err
	}
	if f.Seq == 0 {
		return nil, fmt.Errorf("%w: face %s has sequence 0", ErrCorrupt, id)
	}
	return f, nil
}
