package exchangetest

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// This file tests how extended property ids are spelled in answers and
// matched in requests (extprops.go).

func TestCanonicalPropID(t *testing.T) {
	for in, want := range map[string]string{
		"Integer 0x0E07":    "Integer 0xe07",
		"integer 0XE07":     "Integer 0xe07",
		"SystemTime 0x0E06": "SystemTime 0xe06",
		"systemtime 0x0039": "SystemTime 0x39",
		"String 0x007D":     "String 0x7d",
		"  LONG   0x0E08 ":  "Long 0xe08",
		"String {00020386-0000-0000-C000-000000000046} name X-Foo":   "String {00020386-0000-0000-c000-000000000046} Name X-Foo",
		"String {66F5A359-4659-4830-9070-00047EC6AC6E} NAME my prop": "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name my prop",
		"Integer {00062008-0000-0000-C000-000000000046} ID 0x08570":  "Integer {00062008-0000-0000-c000-000000000046} Id 0x8570",
		"integer {11000E07-B51B-40D6-AF21-CAA85EDAB1D0} Id 0x0027":   "Integer {11000e07-b51b-40d6-af21-caa85edab1d0} Id 0x27",
		"Unknowntype 0x10":   "Unknowntype 0x10",
		"not an id at all":   "not an id at all",
		"String {nope} Name": "String {nope} Name",
	} {
		assert.Equal(t, want, canonicalPropID(in), in)
		if canonicalPropID(in) != in {
			assert.Equal(t, normalizePropID(in), normalizePropID(want), "%q and %q name one property", in, want)
		}
	}
	// The name is case-sensitive; nothing else is.
	assert.NotEqual(t, normalizePropID("String {66f5a359-4659-4830-9070-00047ec6ac6e} Name X"),
		normalizePropID("String {66f5a359-4659-4830-9070-00047ec6ac6e} Name x"))
	assert.NotEqual(t, normalizePropID("Integer 0xe07"), normalizePropID("Integer 0xe08"))
	assert.NotEqual(t, normalizePropID("Integer 0xe07"), normalizePropID("String 0xe07"))
}

func TestPropIDsInAnswersAndRequests(t *testing.T) {
	s := newTestServer(t, nil)
	const (
		named    = "String {00020386-0000-0000-C000-000000000046} name X-Foo"
		namedOut = "String {00020386-0000-0000-c000-000000000046} Name X-Foo"
		byID     = "integer {00062008-0000-0000-C000-000000000046} ID 0x08570"
		byIDOut  = "Integer {00062008-0000-0000-c000-000000000046} Id 0x8570"
	)
	id := newDraft(t, s, map[string]any{"subject": "p", "singleValueExtendedProperties": []map[string]string{
		{"id": "integer 0x0E07", "value": "1"},
		{"id": "systemtime 0x0e06", "value": "2024-01-02T03:04:05Z"},
		{"id": named, "value": "foo"},
		{"id": byID, "value": "1"},
	}})

	// Every property, spelled as Graph spells it.
	r := do(t, s, "GET", msgPath(id)+"?$expand=singleValueExtendedProperties", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	var ids []any
	for _, p := range r.json["singleValueExtendedProperties"].([]any) {
		ids = append(ids, p.(map[string]any)["id"])
	}
	assert.Equal(t, []any{"Integer 0xe07", "SystemTime 0xe06", namedOut, byIDOut}, ids)

	// Asked for in yet another spelling, in $expand and $filter.
	q := url.Values{"$expand": {"singleValueExtendedProperties($filter=id eq 'INTEGER 0x00000E07' or id eq 'String {00020386-0000-0000-c000-000000000046} NAME X-Foo')"}}
	r = do(t, s, "GET", msgPath(id)+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []any{
		map[string]any{"id": "Integer 0xe07", "value": "1"},
		map[string]any{"id": namedOut, "value": "foo"},
	}, r.json["singleValueExtendedProperties"])
	q = url.Values{"$filter": {"singleValueExtendedProperties/Any(ep: ep/id eq 'Integer {00062008-0000-0000-c000-000000000046} Id 0x8570' and ep/value eq '1')"}}
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox/messages?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, id, values(r)[0]["id"])
	// The name is case-sensitive.
	q = url.Values{"$filter": {"singleValueExtendedProperties/Any(ep: ep/id eq 'String {00020386-0000-0000-c000-000000000046} Name x-foo' and ep/value eq 'foo')"}}
	r = do(t, s, "GET", "/v1.0/users/"+alice+"/mailFolders/inbox/messages?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Empty(t, r.json["value"])

	// A PATCH in another spelling changes the one property.
	r = doJSON(t, s, "PATCH", msgPath(id), map[string]any{"singleValueExtendedProperties": []map[string]string{
		{"id": namedOut, "value": "bar"},
	}})
	require.Equal(t, 200, r.status, string(r.raw))
	r = do(t, s, "GET", msgPath(id)+"?$expand=singleValueExtendedProperties", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Len(t, r.json["singleValueExtendedProperties"], 4)
	assert.Contains(t, r.json["singleValueExtendedProperties"], map[string]any{"id": namedOut, "value": "bar"})
}
