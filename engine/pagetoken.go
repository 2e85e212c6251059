package engine

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
)

// Page tokens are opaque to callers and tamper-evident: a version, the list
// they belong to, the collection incarnation they were issued for, a hash of
// the request's filters, and the position, signed with the store's secret.
// A token of another collection, another filter, a deleted-and-recreated
// collection or another list kind fails the check.

type tokenKind byte

const (
	tokenListUsers tokenKind = iota + 1
	tokenListFaces
	tokenListCollections
)

const (
	pageTokenVersion = 1
	pageTokenMACLen  = 16
)

type pageToken struct {
	kind     tokenKind
	scope    uint64 // collection incarnation (0 for ListCollections)
	filter   uint64 // hash of the listing's filters
	position []byte
}

func (e *Engine) signToken(t pageToken) string {
	b := make([]byte, 0, 18+len(t.position)+pageTokenMACLen)
	b = append(b, pageTokenVersion, byte(t.kind))
	b = binary.BigEndian.AppendUint64(b, t.scope)
	b = binary.BigEndian.AppendUint64(b, t.filter)
	b = append(b, t.position...)
	b = append(b, e.tokenMAC(b)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (e *Engine) tokenMAC(payload []byte) []byte {
	m := hmac.New(sha256.New, e.secret)
	m.Write(payload)
	return m.Sum(nil)[:pageTokenMACLen]
}

// openToken verifies s and returns its position. An empty s means the first page.
func (e *Engine) openToken(s string, kind tokenKind, scope, filter uint64) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	bad := errorf(CodeInvalidPaginationToken, "NextToken is not a token this listing issued")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 18+pageTokenMACLen {
		return nil, bad
	}
	payload, mac := b[:len(b)-pageTokenMACLen], b[len(b)-pageTokenMACLen:]
	if !hmac.Equal(mac, e.tokenMAC(payload)) || payload[0] != pageTokenVersion || tokenKind(payload[1]) != kind {
		return nil, bad
	}
	if binary.BigEndian.Uint64(payload[2:]) != scope || binary.BigEndian.Uint64(payload[10:]) != filter {
		return nil, errorf(CodeInvalidPaginationToken, "NextToken belongs to another collection or other request parameters")
	}
	return payload[18:], nil
}

// openPosition opens a token (see openToken) whose position is a uint64,
// the key of the last item listed; it is 0 for no token.
func (e *Engine) openPosition(s string, kind tokenKind, scope, filter uint64) (uint64, error) {
	pos, err := e.openToken(s, kind, scope, filter)
	switch {
	case err != nil:
		return 0, err
	case pos == nil:
		return 0, nil
	case len(pos) != 8:
		return 0, errorf(CodeInvalidPaginationToken, "NextToken is not a token this listing issued")
	}
	return binary.BigEndian.Uint64(pos), nil
}

// filterHash binds a token to the filters of the request that produced it.
func filterHash(parts ...string) uint64 {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return binary.BigEndian.Uint64(h.Sum(nil))
}
