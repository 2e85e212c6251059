package store

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
	"unsafe"
)

const formatV1 = 1

// formatV2 is the face record of layout 2: keyed by face ID, holding the
// face's sequence, without its vector (which lives in its own record under
// that sequence). Version 1 face records held the vector inline. This
// release reads both only to upgrade them (see upgrade).
const formatV2 = 2

// formatV3 is the face record of layout 3: keyed by the face's sequence,
// like its vector, and holding the face's ID.
const formatV3 = 3

// CollectionMeta describes one collection.
type CollectionMeta struct {
	ID string
	// Seq is the collection's incarnation number, unique for the store's
	// lifetime: page tokens are bound to it, so a token of a deleted
	// collection never works on a new one of the same name.
	Seq uint64
	// Dim is the embedding dimension, 0 until fixed by the first face.
	Dim int
	// Similarity names the curve from cosine to percentage.
	Similarity string
	Created    time.Time
	// LastUserPK is the last user primary key handed out.
	LastUserPK uint64
	// Tier names the form of the vectors searches scan: "" (float32, the
	// default), "int8" or "float16". It is encoded as an optional trailing
	// field, written only when set, so records written before it existed
	// decode as float32 and float32 records read the same to older code.
	Tier string
}

// Face is one indexed face.
type Face struct {
	ID              string
	Seq             uint64
	ImageID         string
	ExternalImageID string
	UserID          string
	// Box is the face's bounding box in its image, nil for the whole image
	// (the default). It is encoded as an optional trailing field, written
	// only when set, so records written before it existed decode as whole
	// image faces and such records read the same to older code.
	Box *Box
	// Vector is L2-normalized; nil when read without vectors.
	Vector []float32
}

// Box is a face's bounding box as ratios of its image's width and height.
type Box struct {
	Width, Height, Left, Top float32
}

// boxLen is the encoded length of a Box: four little-endian float32s.
const boxLen = 16

// User is one user.
type User struct {
	ID      string
	PK      uint64
	Created time.Time
}

// Token is a stored idempotency record.
type Token struct {
	ParamHash [32]byte
	Response  []byte
	Expires   time.Time
}

type decoder struct {
	b   []byte
	err error
	// kind, id and seq name the record in errors ("face <id>", "vector
	// <seq>"); they are joined only for an error, so a record that decodes
	// costs no string building.
	kind, id string
	seq      uint64
}

func (d *decoder) name() string {
	switch {
	case d.id != "":
		return d.kind + " " + d.id
	case d.seq != 0:
		return fmt.Sprintf("%s %d", d.kind, d.seq)
	}
	return d.kind
}

func (d *decoder) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated %s in %s", ErrCorrupt, what, d.name())
	}
}

func (d *decoder) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// unixNano reads a time written as varint nanoseconds since the epoch, in
// UTC.
func (d *decoder) unixNano(what string) time.Time {
	if d.err != nil {
		return time.Time{}
	}
	ns, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return time.Time{}
	}
	d.b = d.b[n:]
	return time.Unix(0, ns).UTC()
}

func (d *decoder) bytes(n int, what string) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b) {
		d.fail(what)
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) str(what string) string { return string(d.raw(what)) }

// raw is str without the copy: the bytes alias the record.
func (d *decoder) raw(what string) []byte {
	n := d.uvarint(what)
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	return d.bytes(int(n), what)
}

func (d *decoder) version() { d.versionOf(formatV1) }

func (d *decoder) versionOf(want byte) {
	if len(d.b) == 0 {
		d.fail("format version")
		return
	}
	if v := d.b[0]; v != want {
		d.err = fmt.Errorf("%w: %s has unknown format version %d (this release reads %d)", ErrCorrupt, d.name(), v, want)
	}
	d.b = d.b[1:]
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes in %s", ErrCorrupt, len(d.b), d.name())
	}
	return d.err
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func encodeCollection(m CollectionMeta) []byte {
	b := []byte{formatV1}
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, uint64(m.Dim))
	b = appendStr(b, m.Similarity)
	b = binary.AppendVarint(b, m.Created.UnixNano())
	b = binary.AppendUvarint(b, m.LastUserPK)
	if m.Tier != "" {
		b = appendStr(b, m.Tier)
	}
	return b
}

func decodeCollection(id string, v []byte) (CollectionMeta, error) {
	d := decoder{b: v, kind: "collection", id: id}
	d.version()
	m := CollectionMeta{ID: id}
	m.Seq = d.uvarint("collection seq")
	m.Dim = int(d.uvarint("collection dim"))
	m.Similarity = d.str("collection similarity")
	m.Created = d.unixNano("collection created")
	m.LastUserPK = d.uvarint("collection last user pk")
	if d.err == nil && len(d.b) > 0 {
		if m.Tier = d.str("collection tier"); d.err == nil && m.Tier == "" {
			d.err = fmt.Errorf("%w: collection %s has an empty tier field", ErrCorrupt, id)
		}
	}
	return m, d.done()
}

// encodeFace encodes a face's record: everything but its vector. The
// record is keyed by the face's sequence, so it holds the face's ID.
func encodeFace(f *Face) []byte {
	b := make([]byte, 0, 5+len(f.ID)+len(f.ImageID)+len(f.UserID)+len(f.ExternalImageID)+boxLen)
	b = append(b, formatV3)
	b = appendStr(b, f.ID)
	b = appendStr(b, f.ImageID)
	b = appendStr(b, f.ExternalImageID)
	b = appendStr(b, f.UserID)
	if f.Box != nil {
		for _, x := range [4]float32{f.Box.Width, f.Box.Height, f.Box.Left, f.Box.Top} {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
		}
	}
	return b
}

func decodeFace(seq uint64, v []byte) (*Face, error) {
	f := &Face{}
	if err := decodeFaceInto(f, seq, v, false); err != nil {
		return nil, err
	}
	return f, nil
}

// decodeFaceInto decodes the record v of the face of sequence seq into f,
// so that a scan can reuse one Face. The record's strings share one
// allocation (Open decodes a million of them). With aliasUser, f.UserID
// is not copied but aliases v, valid only while v is: a scan that only
// looks the user up spares an allocation per face.
func decodeFaceInto(f *Face, seq uint64, v []byte, aliasUser bool) error {
	d := decoder{b: v, kind: "face record", seq: seq}
	d.versionOf(formatV3)
	id := d.raw("face id")
	img := d.raw("face image id")
	ext := d.raw("face external image id")
	usr := d.raw("face user id")
	var box *Box
	if d.err == nil && len(d.b) > 0 {
		v := d.bytes(boxLen, "face bounding box")
		if d.err == nil {
			box = &Box{Width: le32(v), Height: le32(v[4:]), Left: le32(v[8:]), Top: le32(v[12:])}
		}
	}
	if err := d.done(); err != nil {
		return err
	}
	n := len(id) + len(img) + len(ext)
	if !aliasUser {
		n += len(usr)
	}
	buf := make([]byte, 0, n)
	buf = append(append(append(buf, id...), img...), ext...)
	if !aliasUser {
		buf = append(buf, usr...)
	}
	all := unsafe.String(unsafe.SliceData(buf), len(buf))
	idEnd, imgEnd := len(id), len(id)+len(img)
	extEnd := imgEnd + len(ext)
	*f = Face{ID: all[:idEnd], Seq: seq, ImageID: all[idEnd:imgEnd], ExternalImageID: all[imgEnd:extEnd], Box: box}
	if aliasUser {
		f.UserID = unsafe.String(unsafe.SliceData(usr), len(usr))
	} else {
		f.UserID = all[extEnd:]
	}
	return nil
}

func le32(b []byte) float32 { return math.Float32frombits(binary.LittleEndian.Uint32(b)) }

// encodeVector encodes a face's vector record: the face's ID (so that a
// vector and its face can be checked against each other from either side)
// and the values, 4 little-endian bytes each. The record is built in dst's
// memory when it has room.
func encodeVector(dst []byte, faceID string, vec []float32) []byte {
	b := dst[:0]
	if n := vectorRecordLen(faceID, len(vec)); cap(b) < n {
		b = make([]byte, 0, n)
	}
	b = append(b, formatV1)
	b = appendStr(b, faceID)
	if nativeLittleEndian {
		return append(b, floatBytes(vec)...) // one memmove, as in decodeVector
	}
	for _, x := range vec {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b
}

// vectorRecordLen is the length of encodeVector's record.
func vectorRecordLen(faceID string, dim int) int {
	var length [binary.MaxVarintLen64]byte
	return 1 + binary.PutUvarint(length[:], uint64(len(faceID))) + len(faceID) + 4*dim
}

// decodeVectorRaw decodes a vector record, returning the face ID and the
// values' bytes rather than decoding them. Both alias v.
func decodeVectorRaw(seq uint64, v []byte) ([]byte, []byte, error) {
	d := decoder{b: v, kind: "vector", seq: seq}
	d.version()
	id := d.raw("face id")
	if d.err == nil && len(d.b)%4 != 0 {
		d.err = fmt.Errorf("%w: %s holds %d bytes, not whole float32s", ErrCorrupt, d.name(), len(d.b))
	}
	return id, d.b, d.err
}

func encodeUser(u User) []byte {
	b := make([]byte, 0, 1+2*binary.MaxVarintLen64)
	b = append(b, formatV1)
	b = binary.AppendUvarint(b, u.PK)
	return binary.AppendVarint(b, u.Created.UnixNano())
}

func decodeUser(id string, v []byte) (User, error) {
	d := decoder{b: v, kind: "user", id: id}
	d.version()
	u := User{ID: id, PK: d.uvarint("user pk")}
	u.Created = d.unixNano("user created")
	return u, d.done()
}

func encodeToken(t Token) []byte {
	b := []byte{formatV1}
	b = append(b, t.ParamHash[:]...)
	b = binary.AppendVarint(b, t.Expires.UnixNano())
	return append(b, t.Response...)
}

func decodeToken(v []byte) (*Token, error) {
	d := decoder{b: v, kind: "token"}
	d.version()
	t := &Token{}
	copy(t.ParamHash[:], d.bytes(32, "token hash"))
	if d.err == nil {
		ns, n := binary.Varint(d.b)
		if n <= 0 {
			d.fail("token expiry")
		} else {
			t.Expires = time.Unix(0, ns)
			t.Response = append([]byte(nil), d.b[n:]...)
		}
	}
	return t, d.err
}
