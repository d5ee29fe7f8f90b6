package exchangetest

import (
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilterMessages(t *testing.T) {
	s := newTestServer(t, nil)
	base := "/v1.0/users/" + alice + "/mailFolders/inbox/messages"
	var ids []string
	for i := range 12 {
		mimeText := strings.Replace(sampleMIME, "<m1@example.com>", "<m"+itoa(i)+"@example.com>", 1)
		r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(mimeText), "text/plain")
		require.Equal(t, 201, r.status)
		id := r.json["id"].(string)
		ids = append(ids, id)
		r = doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+id, map[string]any{
			"singleValueExtendedProperties": []map[string]string{{"id": sourceProp, "value": "uid-" + itoa(i)}},
		})
		require.Equal(t, 200, r.status)
	}

	q := url.Values{"$filter": {"internetMessageId eq '<m7@example.com>'"}, "$select": {"id,internetMessageId"}}
	r := do(t, s, "GET", base+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, ids[7], values(r)[0]["id"])
	assert.Nil(t, values(r)[0]["subject"], "$select drops other properties")

	q = url.Values{"$filter": {"singleValueExtendedProperties/Any(ep: ep/id eq '" + sourceProp + "' and ep/value eq 'uid-3')"}}
	r = do(t, s, "GET", base+"?"+q.Encode(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 1)
	assert.Equal(t, ids[3], values(r)[0]["id"])

	// The Name part of an extended property id is case-sensitive.
	q = url.Values{"$filter": {"singleValueExtendedProperties/any(ep:ep/id eq 'String {66f5a359-4659-4830-9070-00047ec6ac6e} Name MAILFERRYSOURCEID' and ep/value eq 'uid-3')"}}
	r = do(t, s, "GET", base+"?"+q.Encode(), nil, "")
	assert.Empty(t, values(r))

	// Paging: default $top is 10.
	r = do(t, s, "GET", base, nil, "")
	assert.Len(t, values(r), 10)
	next := r.json["@odata.nextLink"].(string)
	u, _ := url.Parse(next)
	r = do(t, s, "GET", u.RequestURI(), nil, "")
	assert.Len(t, values(r), 2)
	assert.Equal(t, ids[11], values(r)[1]["id"])
}

func TestFilterChains(t *testing.T) {
	var looked []string
	f := func(path string) (any, bool) {
		looked = append(looked, path)
		v, ok := map[string]any{"a": "x", "b": "y"}[path]
		return v, ok
	}
	for src, want := range map[string]bool{
		"a eq 'x' or b eq 'z'":                true,
		"a eq 'z' or b eq 'y'":                true,
		"a eq 'z' or b eq 'z'":                false,
		"a eq 'x' and b eq 'y'":               true,
		"a eq 'x' and b eq 'z'":               false,
		"a eq 'z' or a eq 'x' and b eq 'y'":   true,
		"not (a eq 'x' and b eq 'y')":         false,
		"(a eq 'z' or a eq 'x') and b eq 'y'": true,
	} {
		p, err := parseFilter(src, nil)
		require.NoError(t, err, src)
		assert.Equal(t, want, p.pred(f), src)
	}

	// The right side is not evaluated when the left one decides.
	for _, src := range []string{"a eq 'x' or b eq 'y'", "a eq 'z' and b eq 'y'"} {
		p, err := parseFilter(src, nil)
		require.NoError(t, err)
		looked = nil
		p.pred(f)
		assert.Equal(t, []string{"a"}, looked, src)
	}

	for _, src := range []string{"a eq", "a eq 'x' or", "(a eq 'x'", "a eq 'x"} {
		_, err := parseFilter(src, nil)
		assert.Error(t, err, src)
	}
}
