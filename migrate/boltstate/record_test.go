package boltstate

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailferry/mailferry/migrate"
)

func TestRecordRoundTrip(t *testing.T) {
	long := strings.Repeat("x", 300) // a length over one uvarint byte
	for _, c := range []struct {
		item  string
		flags []migrate.Flag
	}{
		{"item-1", nil},
		{"i", []migrate.Flag{migrate.FlagSeen}},
		{long, []migrate.Flag{migrate.FlagSeen, "$Label1", "", migrate.Flag(long)}},
	} {
		v := encodeRecord(c.item, c.flags)
		if !committed(v) {
			t.Errorf("%q: not committed", c.item)
		}
		r, err := decodeRecord(9, v, map[string]migrate.Flag{})
		if err != nil || r.UID != 9 || r.ItemID != c.item || !slices.Equal(r.Flags, c.flags) {
			t.Errorf("%q %q: decoded %+v, %v", c.item, c.flags, r, err)
		}
	}
	r, err := decodeRecord(3, begunRecord, nil)
	if err != nil || r.UID != 3 || r.Committed() || r.Flags != nil || committed(begunRecord) {
		t.Errorf("begun record: %+v, %v", r, err)
	}
}

func TestRecordInternsFlags(t *testing.T) {
	intern := map[string]migrate.Flag{}
	a, _ := decodeRecord(1, encodeRecord("a", []migrate.Flag{migrate.FlagSeen}), intern)
	b, _ := decodeRecord(2, encodeRecord("b", []migrate.Flag{migrate.FlagSeen}), intern)
	if len(intern) != 1 || a.Flags[0] != b.Flags[0] {
		t.Errorf("interned %v", intern)
	}
	if testing.AllocsPerRun(100, func() { decodeRecord(3, encodeRecord("c", []migrate.Flag{migrate.FlagSeen}), intern) }) > 4 {
		t.Error("a known flag is allocated again")
	}
}

func TestRecordMalformed(t *testing.T) {
	for _, v := range [][]byte{nil, {5, 'a'}, {0x80}, append(encodeRecord("item", nil), 9, 'x')} {
		if _, err := decodeRecord(1, v, map[string]migrate.Flag{}); !errors.Is(err, errBadRecord) {
			t.Errorf("%q: %v, want errBadRecord", v, err)
		}
	}
}

func TestMeta(t *testing.T) {
	v, m, ok := decodeMeta(encodeMeta(0xFFFFFFFE, 1<<60))
	if !ok || v != 0xFFFFFFFE || m != 1<<60 {
		t.Errorf("meta: %d %d %v", v, m, ok)
	}
	if _, _, ok := decodeMeta([]byte{1, 2}); ok {
		t.Error("decoded a short meta")
	}
}
