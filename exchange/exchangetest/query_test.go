package exchangetest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// getQ sends GET path with the query options given as name, value pairs,
// encoded as a client encodes them.
func getQ(t *testing.T, s *Server, path string, pairs ...string) resp {
	t.Helper()
	q := url.Values{}
	for i := 0; i+1 < len(pairs); i += 2 {
		q.Add(pairs[i], pairs[i+1])
	}
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return do(t, s, "GET", path, nil, "")
}

// wantError checks an error answer: status, code and (when msg is not
// empty) message.
func wantError(t *testing.T, r resp, status int, code, msg string, what string) {
	t.Helper()
	require.Equal(t, status, r.status, "%s: %s", what, r.raw)
	assert.Equal(t, code, r.errCode(), what)
	if msg != "" {
		e, _ := r.json["error"].(map[string]any)
		assert.Equal(t, msg, e["message"], what)
	}
}

const (
	inboxMsgs = "/v1.0/users/" + alice + "/mailFolders/inbox/messages"
	folders   = "/v1.0/users/" + alice + "/mailFolders"
)

func TestPagingOptions(t *testing.T) {
	s := newTestServer(t, nil)
	base := "/v1.0/users/" + alice + "/mailFolders"
	for _, q := range []string{"$top=-1", "$top=x", "$skip=-2", "$skip=1.5", "$top=", "$skip=", "$count="} {
		r := do(t, s, "GET", base+"?"+q, nil, "")
		assert.Equal(t, 400, r.status, q)
		assert.Equal(t, "BadRequest", r.errCode(), q)
	}
	r := do(t, s, "GET", base+"?$top=2&$skip=7&$count=true&$select=displayName", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.EqualValues(t, 8, r.json["@odata.count"])
	require.Len(t, values(r), 1)
	assert.Equal(t, "Conversation History", values(r)[0]["displayName"])
	assert.NotContains(t, values(r)[0], "parentFolderId", "$select")
	assert.Contains(t, values(r)[0], "id", "id is always there")
	assert.Nil(t, r.json["@odata.nextLink"])

	r = do(t, s, "GET", "/v1.0/users/"+alice+"/messages?$expand="+"singleValueExtendedProperties($filter=id%20eq)", nil, "")
	assert.Equal(t, 400, r.status)
}

// TestFilterUnknownProperty: a $filter naming a property its type does
// not have answers 400 RequestBroker--ParseUri "Could not find a property
// named …", on a collection with items or without, for messages, folders
// and inside lambdas; a property Graph has and the emulator cannot test
// answers 501, never an empty list.
func TestFilterUnknownProperty(t *testing.T) {
	s := newTestServer(t, nil)
	newDraft(t, s, map[string]any{"subject": "one"})
	empty := "/v1.0/users/" + alice + "/mailFolders/drafts/messages"
	for _, tc := range []struct {
		path, filter, msg string
	}{
		{inboxMsgs, "isJunk ne true", "Could not find a property named 'isJunk' on type 'microsoft.graph.message'."},
		{empty, "internetMessageID eq '<a@b>' and subjekt eq 'x'", "Could not find a property named 'subjekt' on type 'microsoft.graph.message'."},
		{inboxMsgs, "singleValueExtendedProperties/any(ep: ep/id eq '" + sourceProp + "' and ep/valeu eq 'x')",
			"Could not find a property named 'valeu' on type 'microsoft.graph.singleValueLegacyExtendedProperty'."},
		{inboxMsgs, "flag/flagStat eq 'flagged'", "Could not find a property named 'flagStat' on type 'microsoft.graph.followupFlag'."},
		{inboxMsgs, "from/emailAddress/adress eq 'a@b'", "Could not find a property named 'adress' on type 'microsoft.graph.emailAddress'."},
		{inboxMsgs, "unsubscribeEnabled eq true", "Could not find a property named 'unsubscribeEnabled' on type 'microsoft.graph.message'."},
		{folders, "displayname eq 'Inbox' or name eq 'Inbox'", "Could not find a property named 'name' on type 'microsoft.graph.mailFolder'."},
		{folders + "/inbox/childFolders", "startswith(displayNam,'x')", "Could not find a property named 'displayNam' on type 'microsoft.graph.mailFolder'."},
		{inboxMsgs, "toRecipients/emailAddress/address eq 'a@b'", "The parent value for a property access of a property 'emailAddress' is not a single value. Property access can only be applied to a single value."},
		{inboxMsgs, "subject/any(s: s eq 'x')", "Any/All may only be used following a collection."},
		{inboxMsgs, "categories/any(c: c/name eq 'x')", "Could not find a property named 'name' on type 'Edm.String'."},
	} {
		r := getQ(t, s, tc.path, "$filter", tc.filter)
		wantError(t, r, http.StatusBadRequest, "RequestBroker--ParseUri", tc.msg, tc.filter)
	}

	// Properties Graph has but the emulator does not bind: 501, unless a
	// property is unknown too.
	for _, f := range []string{"bodyPreview eq 'x'", "from/emailAddress/address eq 'a@b'",
		"toRecipients/any(r: r/emailAddress/address eq 'a@b')", "flag/dueDateTime/dateTime eq '2024-01-01'",
		"singleValueExtendedProperties/any(ep: ep/id eq 'x') and conversationId eq 'c'"} {
		r := getQ(t, s, inboxMsgs, "$filter", f)
		wantError(t, r, http.StatusNotImplemented, "NotImplemented", "", f)
	}
	r := getQ(t, s, inboxMsgs, "$filter", "bodyPreview eq 'x' and nope eq 1")
	wantError(t, r, http.StatusBadRequest, "RequestBroker--ParseUri", "", "unknown outranks not emulated")

	// What the emulator binds answers.
	for _, f := range []string{"subject eq 'one'", "Subject eq 'one' and isDraft eq true", "flag/flagStatus eq 'notFlagged' and subject eq 'one'",
		"categories/any(c: c eq 'x') or subject eq 'one'", "singleValueExtendedProperties/Any(ep: ep/id eq '" + sourceProp + "') or subject eq 'one'",
		"receivedDateTime ge 2000-01-01T00:00:00Z and contains(subject, 'on')"} {
		r := getQ(t, s, inboxMsgs, "$filter", f)
		require.Equal(t, 200, r.status, "%s: %s", f, r.raw)
		assert.Len(t, values(r), 1, f)
	}
	// unsubscribeEnabled is a beta property (501: Graph has it there, the
	// emulator does not bind it).
	r = getQ(t, s, "/beta/users/"+alice+"/mailFolders/inbox/messages", "$filter", "unsubscribeEnabled eq true")
	wantError(t, r, http.StatusNotImplemented, "NotImplemented", "", "beta property")
}

// TestFilterEmulatedPathsAreBound: every path the schema marks emulated is
// one fields.go binds, and the others are not, so that a filter never
// reads a property the emulator does not have as null.
func TestFilterEmulatedPathsAreBound(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "x", "categories": []string{"c"},
		"singleValueExtendedProperties": []map[string]string{{"id": sourceProp, "value": "v"}}})
	s.mu.Lock()
	defer s.mu.Unlock()
	mb := s.lookup(alice)
	m := mb.messages[id]
	for typ, f := range map[*edmType]fields{schema.message: messageFields(m), schema.mailFolder: folderFields(mb, mb.folders[m.folderID])} {
		for path := range typ.emulated {
			if before, after, ok := strings.Cut(path, "/"); ok && before == "singlevalueextendedproperties" {
				_, bound := propFields(m.props[0])(after)
				assert.True(t, bound, path)
				continue
			}
			_, bound := f(path)
			assert.True(t, bound, "%s %s", typ.name, path)
		}
		for name, p := range typ.props {
			if p.nav || typ.emulated[name] || (p.typ != nil && !p.coll) {
				continue
			}
			_, bound := f(name)
			assert.False(t, bound, "%s %s is bound but not marked emulated", typ.name, name)
		}
	}
	// And $orderby finds each emulated value in the rendered entity.
	msg := messageJSON(m, nil, nil)
	for path := range schema.message.emulated {
		if p, err := (&scope{typ: schema.message}).resolve(path); err == nil && !p.prop.coll && p.prop.typ == nil {
			assert.NotNil(t, jsonPath(msg, path), path)
		}
	}
}

// TestTopRange: $top of messages is 1 to 1000; 0, a negative or a
// non-number is refused everywhere; folders over 1000 get a page of 1000.
func TestTopRange(t *testing.T) {
	s := newTestServer(t, nil)
	newDraft(t, s, map[string]any{"subject": "one"})
	for _, p := range []string{inboxMsgs, "/v1.0/users/" + alice + "/messages"} {
		for _, top := range []string{"1", "1000"} {
			r := getQ(t, s, p, "$top", top)
			require.Equal(t, 200, r.status, "%s $top=%s: %s", p, top, r.raw)
		}
		wantError(t, getQ(t, s, p, "$top", "1001"), 400, "BadRequest",
			"Invalid value '1001' for $top query option: the page size of messages is between 1 and 1000.", "$top=1001")
		wantError(t, getQ(t, s, p, "$top", "0"), 400, "BadRequest", "", "$top=0")
	}
	wantError(t, getQ(t, s, folders, "$top", "-1"), 400, "BadRequest",
		"Invalid value '-1' for $top query option found. The $top query option requires a non-negative integer value.", "$top=-1")
	wantError(t, getQ(t, s, folders, "$top", "ten"), 400, "BadRequest",
		"Invalid value 'ten' for $top query option found. The $top query option requires a non-negative integer value.", "$top=ten")
	wantError(t, getQ(t, s, folders, "$top", "0"), 400, "BadRequest", "", "folders $top=0")
	wantError(t, getQ(t, s, folders, "$skip", "-1"), 400, "BadRequest",
		"Invalid value '-1' for $skip query option found. The $skip query option requires a non-negative integer value.", "$skip=-1")

	// Folders: no documented maximum; a page holds at most 1000.
	for i := range 1002 {
		r := doJSON(t, s, "POST", folders+"/inbox/childFolders", map[string]any{"displayName": "f" + itoa(i)})
		require.Equal(t, 201, r.status)
	}
	r := getQ(t, s, folders+"/inbox/childFolders", "$top", "5000", "$select", "id")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Len(t, values(r), 1000)
	next, _ := r.json["@odata.nextLink"].(string)
	u, err := url.Parse(next)
	require.NoError(t, err)
	r = do(t, s, "GET", u.RequestURI(), nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Len(t, values(r), 2)
}

// TestQueryOptionNames: unknown "$" options and repeated options are
// refused; options without "$" or in another case are the same options;
// other parameters are ignored.
func TestQueryOptionNames(t *testing.T) {
	s := newTestServer(t, nil)
	wantError(t, do(t, s, "GET", folders+"?$foo=1", nil, ""), 400, "BadRequest", "The query parameter '$foo' is not supported.", "$foo")
	wantError(t, do(t, s, "GET", folders+"?$top=1&$top=2", nil, ""), 400, "BadRequest",
		"Query option '$top' was specified more than once, but it must be specified at most once.", "$top twice")
	wantError(t, do(t, s, "GET", folders+"?top=1&$top=2", nil, ""), 400, "BadRequest", "", "top and $top")
	wantError(t, do(t, s, "GET", inboxMsgs+"?$Filter=subjekt%20eq%20'x'", nil, ""), 400, "RequestBroker--ParseUri", "", "$Filter")
	// Not a GET: names are checked all the same.
	r := doJSON(t, s, "POST", folders+"?$bar=1", map[string]any{"displayName": "x"})
	wantError(t, r, 400, "BadRequest", "", "POST $bar")

	for _, q := range []string{"top=2", "$TOP=2", "Top=2"} {
		r := do(t, s, "GET", folders+"?"+q, nil, "")
		require.Equal(t, 200, r.status, "%s: %s", q, r.raw)
		assert.Len(t, values(r), 2, q)
		assert.Contains(t, r.json["@odata.nextLink"], "%24top=2", q)
	}
	r = do(t, s, "GET", folders+"?filter=displayName%20eq%20'Inbox'", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Len(t, values(r), 1, "filter without $")

	// Other parameters: ignored, or read by the handler.
	r = doJSON(t, s, "POST", folders, map[string]any{"displayName": "hidden", "isHidden": true})
	require.Equal(t, 201, r.status, string(r.raw))
	r = do(t, s, "GET", folders+"?foo=bar&$top=100", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	visible := len(values(r))
	r = do(t, s, "GET", folders+"?includeHiddenFolders=true&$top=100", nil, "")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Greater(t, len(values(r)), visible, "includeHiddenFolders")
}

// TestCollectionOptionsOnEntity: $filter, $top and the like apply to
// collections only.
func TestCollectionOptionsOnEntity(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "one"})
	for _, q := range []string{"$top=1", "$filter=subject eq 'one'", "$orderby=subject", "$count=true", "$skip=1"} {
		k, v, _ := strings.Cut(q, "=")
		wantError(t, getQ(t, s, "/v1.0/users/"+alice+"/messages/"+id, k, v), 400, "BadRequest", "", "message "+q)
		wantError(t, getQ(t, s, folders+"/inbox", k, v), 400, "BadRequest", "", "folder "+q)
	}
	r := getQ(t, s, "/v1.0/users/"+alice+"/messages/"+id, "$select", "subject")
	require.Equal(t, 200, r.status, string(r.raw))
}

// TestSelectAndExpand: $select and $expand name what the type has, as
// Graph answers; expansions the emulator does not make answer 501.
func TestSelectAndExpand(t *testing.T) {
	s := newTestServer(t, nil)
	id := newDraft(t, s, map[string]any{"subject": "one"})
	one := "/v1.0/users/" + alice + "/messages/" + id
	wantError(t, getQ(t, s, folders, "$select", "id,isRead"), 400, "BadRequest",
		"Parsing OData Select and Expand failed: Could not find a property named 'isRead' on type 'microsoft.graph.mailFolder'.", "folder $select")
	wantError(t, getQ(t, s, inboxMsgs, "$select", "id,subjekt"), 400, "BadRequest",
		"Parsing OData Select and Expand failed: Could not find a property named 'subjekt' on type 'microsoft.graph.message'.", "message $select")
	wantError(t, getQ(t, s, one, "$select", "displayName"), 400, "BadRequest", "", "one message $select")
	wantError(t, getQ(t, s, one, "$expand", "singleValueExtendedProperty"), 400, "BadRequest",
		"Parsing OData Select and Expand failed: Could not find a property named 'singleValueExtendedProperty' on type 'microsoft.graph.message'.", "$expand typo")
	wantError(t, getQ(t, s, one, "$expand", "subject"), 400, "BadRequest", "", "$expand of a property")
	wantError(t, getQ(t, s, one, "$expand", "singleValueExtendedProperties($filter=name eq 'x')"), 400, "BadRequest",
		"Parsing OData Select and Expand failed: Could not find a property named 'name' on type 'microsoft.graph.singleValueLegacyExtendedProperty'.", "nested $filter")
	for _, e := range []string{"attachments", "extensions", "singleValueExtendedProperties($select=id)", "*"} {
		wantError(t, getQ(t, s, one, "$expand", e), http.StatusNotImplemented, "NotImplemented", "", e)
	}
	wantError(t, getQ(t, s, folders, "$expand", "childFolders"), http.StatusNotImplemented, "NotImplemented", "", "folder $expand")
	wantError(t, getQ(t, s, folders, "$expand", "messagez"), 400, "BadRequest", "", "folder $expand typo")

	for _, q := range [][]string{
		{"$select", "id,subject,internetMessageHeaders,body,from,toRecipients,ccRecipients"},
		{"$select", "ID,Subject"},
		{"$expand", "singleValueExtendedProperties($filter=id eq '" + sourceProp + "')"},
		{"$expand", "singleValueExtendedProperties"},
	} {
		r := getQ(t, s, one, q...)
		require.Equal(t, 200, r.status, "%v: %s", q, r.raw)
	}
	r := getQ(t, s, folders, "$select", "id,displayName,childFolderCount")
	require.Equal(t, 200, r.status, string(r.raw))
}

// TestOrderBy: $orderby sorts; on messages with $filter it follows the
// documented restriction (InefficientFilter).
func TestOrderBy(t *testing.T) {
	s := newTestServer(t, nil)
	for _, subj := range []string{"b", "C", "a"} {
		newDraft(t, s, map[string]any{"subject": subj, "importance": "low"})
	}
	subjects := func(r resp) []string {
		var out []string
		for _, v := range values(r) {
			out = append(out, v["subject"].(string))
		}
		return out
	}
	r := getQ(t, s, inboxMsgs, "$orderby", "subject")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []string{"a", "b", "C"}, subjects(r))
	r = getQ(t, s, inboxMsgs, "$orderby", "Subject desc", "$top", "2", "$select", "subject")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.Equal(t, []string{"C", "b"}, subjects(r))
	next, _ := r.json["@odata.nextLink"].(string)
	u, err := url.Parse(next)
	require.NoError(t, err)
	r = do(t, s, "GET", u.RequestURI(), nil, "")
	assert.Equal(t, []string{"a"}, subjects(r), "the next page keeps the order")

	r = getQ(t, s, folders, "$orderby", "displayName desc", "$top", "2")
	require.Equal(t, 200, r.status, string(r.raw))
	require.Len(t, values(r), 2)
	assert.Equal(t, "Sent Items", values(r)[0]["displayName"])

	// Using filter and orderby in the same query.
	ok := [][2]string{
		{"subject ne 'x'", "subject"},
		{"subject ne 'x' and importance eq 'low'", "subject desc"},
		{"subject ne 'x' and importance eq 'low'", "subject,importance"},
		{"receivedDateTime ge 2000-01-01T00:00:00Z and receivedDateTime lt 2100-01-01T00:00:00Z and subject ne 'x'", "receivedDateTime desc"},
	}
	for _, c := range ok {
		r := getQ(t, s, inboxMsgs, "$filter", c[0], "$orderby", c[1])
		require.Equal(t, 200, r.status, "%v: %s", c, r.raw)
	}
	refused := [][2]string{
		{"importance eq 'low'", "subject"},                                     // 1: not in $filter
		{"importance eq 'low' and subject ne 'x'", "subject,importance"},       // 2: another order
		{"importance eq 'low' and subject ne 'x'", "subject"},                  // 3: not first
		{"subject ne 'x'", "subject,importance"},                               // 1, second key
		{"singleValueExtendedProperties/any(ep: ep/id eq 'x')", "subject"},     // 1
		{"subject ne 'x' and flag/flagStatus eq 'flagged'", "flag/flagStatus"}, // 3
	}
	for _, c := range refused {
		wantError(t, getQ(t, s, inboxMsgs, "$filter", c[0], "$orderby", c[1]), 400, "InefficientFilter",
			"The restriction or sort order is too complex for this operation.", c[0]+" / "+c[1])
	}
	// Folders have no such restriction.
	r = getQ(t, s, folders, "$filter", "totalItemCount ge 0", "$orderby", "displayName")
	require.Equal(t, 200, r.status, string(r.raw))

	wantError(t, getQ(t, s, inboxMsgs, "$orderby", "subjekt"), 400, "RequestBroker--ParseUri",
		"Could not find a property named 'subjekt' on type 'microsoft.graph.message'.", "unknown")
	wantError(t, getQ(t, s, inboxMsgs, "$orderby", "categories"), 400, "RequestBroker--ParseUri", "", "collection")
	wantError(t, getQ(t, s, inboxMsgs, "$orderby", "flag"), 400, "RequestBroker--ParseUri", "", "complex")
	wantError(t, getQ(t, s, inboxMsgs, "$orderby", "subject up"), 400, "BadRequest", "", "direction")
	wantError(t, getQ(t, s, inboxMsgs, "$orderby", "bodyPreview"), http.StatusNotImplemented, "NotImplemented", "", "not emulated")
}

// TestOtherOptions: $count takes true or false; $search is not emulated
// (501), unless another option is refused; $format=json is served.
func TestOtherOptions(t *testing.T) {
	s := newTestServer(t, nil)
	r := getQ(t, s, folders, "$count", "TRUE")
	require.Equal(t, 200, r.status, string(r.raw))
	assert.NotNil(t, r.json["@odata.count"])
	wantError(t, getQ(t, s, folders, "$count", "yes"), 400, "BadRequest",
		"Invalid value 'yes' for $count query option found. Valid values are 'true, false'.", "$count=yes")
	wantError(t, getQ(t, s, inboxMsgs, "$search", `"pizza"`), http.StatusNotImplemented, "NotImplemented", "", "$search")
	wantError(t, getQ(t, s, inboxMsgs, "$search", `"pizza"`, "$top", "x"), 400, "BadRequest", "", "refused outranks not emulated")
	wantError(t, getQ(t, s, inboxMsgs, "$filter", "bodyPreview eq 'x'", "$top", "x"), 400, "BadRequest", "", "refused outranks a filter not emulated")
	wantError(t, getQ(t, s, inboxMsgs, "$expand", "attachments", "$select", "subjekt"), 400, "BadRequest", "", "refused outranks an expansion not emulated")
	wantError(t, getQ(t, s, inboxMsgs, "$skiptoken", "abc"), http.StatusNotImplemented, "NotImplemented", "", "$skiptoken")
	wantError(t, getQ(t, s, inboxMsgs, "$format", "atom"), http.StatusNotImplemented, "NotImplemented", "", "$format=atom")
	r = getQ(t, s, inboxMsgs, "$format", "json")
	require.Equal(t, 200, r.status, string(r.raw))
	id := newDraft(t, s, map[string]any{"subject": "one"})
	atts := "/v1.0/users/" + alice + "/messages/" + id + "/attachments"
	wantError(t, getQ(t, s, atts, "$filter", "size gt 1"), http.StatusNotImplemented, "NotImplemented", "", "$filter on attachments")
	wantError(t, getQ(t, s, atts, "$filter", "sise gt 1"), 400, "RequestBroker--ParseUri", "", "$filter on attachments, unknown")
	r = getQ(t, s, atts, "$orderby", "name", "$select", "name")
	require.Equal(t, 200, r.status, string(r.raw))
}

// TestExchangeQueries: the queries the exchange package sends (find.go,
// folders.go, probe.go, upload.go, create.go) pass the checks.
func TestExchangeQueries(t *testing.T) {
	prop := "'" + sourceProp + "'"
	stamp := "singleValueExtendedProperties/Any(ep: ep/id eq " + prop + " and ep/value eq 'INBOX/1/2')"
	for _, tc := range []struct {
		kind  string
		pairs []string
	}{
		{"messages", []string{"$filter", stamp, "$select", "id", "$top", "1"}},
		{"messages", []string{"$filter", "internetMessageId eq '<a@b>'", "$select", "id", "$expand", "singleValueExtendedProperties($filter=id eq " + prop + ")", "$top", "100"}},
		{"messages", []string{"$select", "id", "$expand", "singleValueExtendedProperties($filter=id eq " + prop + ")", "$top", "1000"}},
		{"messages", []string{"$filter", stamp, "$select", "id,createdDateTime", "$expand", "singleValueExtendedProperties($filter=id eq " + prop + ")", "$top", "100"}},
		{"messages", []string{"$select", "internetMessageId", "$top", "50"}},
		{"message", []string{"$select", "receivedDateTime"}},
		{"message", []string{"$select", "body,from,toRecipients,ccRecipients,internetMessageHeaders"}},
		{"message", []string{"$select", "id,parentFolderId,isRead,flag,categories,receivedDateTime,isDraft,internetMessageId",
			"$expand", "singleValueExtendedProperties($filter=id eq " + prop + " or id eq 'Integer 0x1081')"}},
		{"folders", []string{"$filter", "displayName eq 'A ''quoted'' name'", "$select", "id,displayName"}},
		{"children", []string{"$filter", "displayName eq 'x'", "$select", "id,displayName"}},
		{"folders", []string{"$filter", "startswith(displayName,'mailferry-probe-')", "$select", "id,displayName,childFolderCount", "$top", "50"}},
		{"folder", []string{"$select", "id,displayName"}},
		{"attachments", []string{"$select", "id,name,size,isInline"}},
		{"attachment", []string{"$expand", "microsoft.graph.itemAttachment/item"}},
	} {
		q := url.Values{}
		for i := 0; i < len(tc.pairs); i += 2 {
			q.Add(tc.pairs[i], tc.pairs[i+1])
		}
		c := &call{method: http.MethodGet, version: "v1.0", query: q}
		err := checkOptions(c, tc.kind)
		assert.Nil(t, err, "%s %v", tc.kind, tc.pairs)
	}
}

// TestCheckOptionsRefuses: what checkOptions refuses by itself, before
// any handler reads the options again.
func TestCheckOptionsRefuses(t *testing.T) {
	for _, tc := range []struct {
		kind   string
		pairs  []string
		status int
	}{
		{"message", []string{"$expand", "singleValueExtendedProperties($filter=name eq 'x')"}, 400},
		{"messages", []string{"$expand", "singleValueExtendedProperties($filter=id eq 'x';$top=1)"}, 501},
		{"attachment", []string{"$expand", "microsoft.graph.itemAttachment/item($select=id)"}, 501},
		{"attachments", []string{"$expand", "microsoft.graph.itemAttachment/item"}, 501},
		{"message", []string{"$expand", "microsoft.graph.eventMessage/event"}, 501},
		{"messages", []string{"$filter", "subject eq 'x'"}, 0},
	} {
		q := url.Values{}
		for i := 0; i < len(tc.pairs); i += 2 {
			q.Add(tc.pairs[i], tc.pairs[i+1])
		}
		err := checkOptions(&call{method: http.MethodGet, version: "v1.0", query: q}, tc.kind)
		if tc.status == 0 {
			assert.Nil(t, err, "%v", tc.pairs)
			continue
		}
		if assert.NotNil(t, err, "%v", tc.pairs) {
			assert.Equal(t, tc.status, err.status, "%v: %s", tc.pairs, err.message)
		}
	}
}

func TestSplitTopLevel(t *testing.T) {
	assert.Equal(t, []string{"a", "b(c,d)", "e('f,g')"}, splitTopLevel("a,b(c,d),e('f,g')", ','))
	assert.Nil(t, splitTopLevel("", ','))
}
