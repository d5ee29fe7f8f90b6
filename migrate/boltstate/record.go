package boltstate

import (
	"encoding/binary"
	"errors"

	"github.com/mailferry/mailferry/migrate"
)

// A record is stored as the length of the item id (a uvarint), the item
// id, then each flag as its length (a uvarint) and its bytes. A begun
// record is the single byte 0: an empty item id and no flags. An Exchange
// item id is about 150 bytes, so a committed record is about 160.

// begunRecord is the value of a message whose copy began. It is shared by
// every Put and never changed.
var begunRecord = []byte{0}

var errBadRecord = errors.New("malformed record")

// encodeRecord returns the value of a committed record.
func encodeRecord(itemID string, flags []migrate.Flag) []byte {
	n := binary.MaxVarintLen64 + len(itemID)
	for _, f := range flags {
		n += binary.MaxVarintLen64 + len(f)
	}
	b := make([]byte, 0, n)
	b = binary.AppendUvarint(b, uint64(len(itemID)))
	b = append(b, itemID...)
	for _, f := range flags {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// committed reports whether v is the value of a committed record: a
// uvarint's first byte is 0 only for 0, an empty item id.
func committed(v []byte) bool { return len(v) > 0 && v[0] != 0 }

// decodeRecord decodes the value v of uid, copying what it keeps (v is
// only valid in its transaction). Flags come from intern, where each
// distinct flag of a folder is allocated once.
func decodeRecord(uid uint32, v []byte, intern map[string]migrate.Flag) (migrate.Record, error) {
	r := migrate.Record{UID: uid}
	item, rest, ok := field(v)
	if !ok {
		return r, errBadRecord
	}
	r.ItemID = string(item)
	n := 0
	for p := rest; len(p) > 0; n++ {
		if _, p, ok = field(p); !ok {
			return r, errBadRecord
		}
	}
	if n == 0 {
		return r, nil
	}
	r.Flags = make([]migrate.Flag, 0, n)
	for len(rest) > 0 {
		var b []byte
		b, rest, _ = field(rest)
		f, ok := intern[string(b)]
		if !ok {
			f = migrate.Flag(b)
			intern[string(f)] = f
		}
		r.Flags = append(r.Flags, f)
	}
	return r, nil
}

// field splits a length-prefixed field off the front of b.
func field(b []byte) (f, rest []byte, ok bool) {
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)-k) {
		return nil, nil, false
	}
	return b[k : k+int(n)], b[k+int(n):], true
}

// metaKey is the key of a folder's UIDVALIDITY and HIGHESTMODSEQ: one
// byte, so that it never meets a UID's four.
var metaKey = []byte("v")

func encodeMeta(uidValidity uint32, modSeq uint64) []byte {
	b := make([]byte, 12)
	binary.BigEndian.PutUint32(b, uidValidity)
	binary.BigEndian.PutUint64(b[4:], modSeq)
	return b
}

func decodeMeta(v []byte) (uidValidity uint32, modSeq uint64, ok bool) {
	if len(v) != 12 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(v), binary.BigEndian.Uint64(v[4:]), true
}

// bucketName is the bucket of a mailbox or a folder: its name after a
// '/', so that an empty name is a valid key too.
func bucketName(name string) []byte {
	return append([]byte{'/'}, name...)
}
