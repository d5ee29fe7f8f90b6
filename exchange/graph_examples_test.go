package exchange_test

// This file replays Microsoft's documented Graph mail examples (Microsoft
// Learn: each request and the status, shape and key fields of its
// documented response) over plain net/http, against the emulator by
// default and against a real tenant when the MAILFERRY_LIVE_* variables
// of live_test.go are set. The same test on both sides shows where the
// emulator and the service differ.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"github.com/mailferry/mailferry/exchange/exchangetest"
)

// graphTarget is where the examples run: the emulator or a real tenant,
// reached the same way (a base URL, a bearer token, an *http.Client).
type graphTarget struct {
	live   bool
	base   string // scheme and host; the version ("/v1.0", "/beta") follows
	user   string // the mailbox: a UPN or an id
	client *http.Client
	token  func(context.Context) (string, error)
	srv    *exchangetest.Server // the emulator; nil on a live tenant

	run  string // random suffix of this run, in names and Message-IDs
	root string // id of the run's scratch folder
	// rootCreated is the answer to the POST that created root: the
	// create-mailFolder example itself.
	rootCreated *graphResponse
}

// examplesUser is the emulator's mailbox.
const examplesUser = "meganb@contoso.com"

// newGraphTarget returns the emulator, or a real tenant when the four
// MAILFERRY_LIVE_* variables are set (a partial set fails the test rather
// than silently testing the emulator). In both, it creates the run's
// top-level folder "mailferry-examples-<time>-<random>", in which every
// example works, and permanently deletes it when the test ends.
func newGraphTarget(t *testing.T) *graphTarget {
	t.Helper()
	env := map[string]string{}
	set := 0
	for _, v := range liveVars {
		if env[v] = os.Getenv(v); env[v] != "" {
			set++
		}
	}
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	g := &graphTarget{run: hex.EncodeToString(rnd[:])}
	switch set {
	case len(liveVars):
		cred, err := azidentity.NewClientSecretCredential(env["MAILFERRY_LIVE_TENANT_ID"], env["MAILFERRY_LIVE_CLIENT_ID"],
			env["MAILFERRY_LIVE_CLIENT_SECRET"], nil)
		if err != nil {
			t.Fatal(err)
		}
		g.live = true
		g.base = "https://graph.microsoft.com"
		g.user = env["MAILFERRY_LIVE_MAILBOX"]
		g.client = &http.Client{Timeout: 2 * time.Minute}
		g.token = func(ctx context.Context) (string, error) {
			tok, err := cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://graph.microsoft.com/.default"}})
			return tok.Token, err
		}
		t.Logf("graph examples: live tenant, mailbox %s", g.user)
	case 0:
		const token = "graph-examples-token"
		g.srv = exchangetest.NewServer(&exchangetest.Options{Token: token})
		t.Cleanup(g.srv.Close)
		g.srv.AddMailbox(examplesUser)
		g.base = g.srv.URL()
		g.user = examplesUser
		g.client = g.srv.Client()
		g.token = func(context.Context) (string, error) { return token, nil }
		t.Logf("graph examples: emulator (set %s to run them against a real tenant)", strings.Join(liveVars, ", "))
	default:
		t.Fatalf("graph examples: set all of %s to run against a real tenant, or none for the emulator", strings.Join(liveVars, ", "))
	}

	name := fmt.Sprintf("mailferry-examples-%s-%s", time.Now().UTC().Format("20060102T150405"), g.run)
	r := g.do(t, request{method: http.MethodPost, path: "/v1.0" + g.userPath() + "/mailFolders",
		json: map[string]any{"displayName": name}})
	if r.status != http.StatusCreated {
		t.Fatalf("create the run's folder %q: %s", name, r)
	}
	g.rootCreated = r
	g.root, _ = r.object(t)["id"].(string)
	if g.root == "" {
		t.Fatalf("create the run's folder %q: no id in %s", name, r)
	}
	t.Cleanup(func() {
		// Not t.Context(): it is done before the cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// https://learn.microsoft.com/graph/api/mailfolder-permanentdelete
		r, err := g.send(ctx, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/permanentDelete"})
		if err != nil || r.status != http.StatusNoContent {
			t.Errorf("could not delete the run's folder %q (delete it by hand): %v %v", name, err, r)
		}
	})
	t.Logf("graph examples: working in folder %q of %s", name, g.user)
	return g
}

func (g *graphTarget) userPath() string { return "/users/" + url.PathEscape(g.user) }

func (g *graphTarget) folderPath(id string) string {
	return g.userPath() + "/mailFolders/" + url.PathEscape(id)
}

func (g *graphTarget) messagePath(id string) string {
	return g.userPath() + "/messages/" + url.PathEscape(id)
}

// request is one HTTP request to the target.
type request struct {
	method string
	// path is relative to the target's base, version included
	// ("/v1.0/users/…"), unless abs is set.
	path        string
	abs         string // an absolute URL (an uploadUrl), sent without Authorization
	query       string // the raw query, without "?"
	json        any    // a JSON body, sent as application/json
	body        []byte // a raw body, sent with contentType
	contentType string
	header      map[string]string
	noAuth      bool // no Authorization header
}

// graphResponse is an answer, read whole.
type graphResponse struct {
	method, url string
	status      int
	header      http.Header
	body        []byte
}

func (r *graphResponse) String() string {
	if r == nil {
		return "<no response>"
	}
	b := string(r.body)
	if len(b) > 1500 {
		b = b[:1500] + "…"
	}
	return fmt.Sprintf("%s %s: %d %s", r.method, r.url, r.status, b)
}

// object decodes the body as a JSON object, failing the test if it is not
// one.
func (r *graphResponse) object(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("%s: the body is not a JSON object: %v", r, err)
	}
	return m
}

// send sends one request.
func (g *graphTarget) send(ctx context.Context, q request) (*graphResponse, error) {
	u := q.abs
	if u == "" {
		u = g.base + q.path
	}
	if q.query != "" {
		u += "?" + q.query
	}
	var body io.Reader
	ct := q.contentType
	switch {
	case q.json != nil:
		b, err := json.Marshal(q.json)
		if err != nil {
			return nil, err
		}
		body, ct = bytes.NewReader(b), "application/json"
	case q.body != nil:
		body = bytes.NewReader(q.body)
	}
	req, err := http.NewRequestWithContext(ctx, q.method, u, body)
	if err != nil {
		return nil, err
	}
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range q.header {
		req.Header.Set(k, v)
	}
	if !q.noAuth && q.abs == "" {
		tok, err := g.token(ctx)
		if err != nil {
			return nil, fmt.Errorf("token: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &graphResponse{method: q.method, url: u, status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// do sends q; a transport error fails the test.
func (g *graphTarget) do(t testing.TB, q request) *graphResponse {
	t.Helper()
	r, err := g.send(t.Context(), q)
	if err != nil {
		t.Fatalf("%s %s%s: %v", q.method, q.path, q.abs, err)
	}
	return r
}

// expect sends q and fails the test unless the answer has the status.
func (g *graphTarget) expect(t testing.TB, status int, q request) *graphResponse {
	t.Helper()
	r := g.do(t, q)
	if r.status != status {
		t.Fatalf("want status %d; got %s", status, r)
	}
	return r
}

// documented logs the page an example comes from.
func documented(t testing.TB, url string) {
	t.Helper()
	t.Logf("example from %s", url)
}

// odataQuery is a query string of OData options, values escaped with
// %20 for spaces (Graph's examples escape so).
func odataQuery(kv ...string) string {
	var parts []string
	for i := 0; i+1 < len(kv); i += 2 {
		parts = append(parts, kv[i]+"="+strings.ReplaceAll(url.QueryEscape(kv[i+1]), "+", "%20"))
	}
	return strings.Join(parts, "&")
}

// Shape checks. Each reports through t.Errorf and returns what it found.

func str(t testing.TB, m map[string]any, key string) string {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Errorf("no %q in %v", key, keys(m))
		return ""
	}
	s, ok := v.(string)
	if !ok {
		t.Errorf("%q is %T %v, want a string", key, v, v)
	}
	return s
}

func nonEmpty(t testing.TB, m map[string]any, key string) string {
	t.Helper()
	s := str(t, m, key)
	if s == "" {
		if _, ok := m[key]; ok {
			t.Errorf("%q is empty", key)
		}
	}
	return s
}

func wantString(t testing.TB, m map[string]any, key, want string) {
	t.Helper()
	if _, ok := m[key]; !ok {
		t.Errorf("no %q (want %q) in %v", key, want, keys(m))
		return
	}
	if got := str(t, m, key); got != want {
		t.Errorf("%q = %q, want %q", key, got, want)
	}
}

func wantBool(t testing.TB, m map[string]any, key string, want bool) {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Errorf("no %q (want %v) in %v", key, want, keys(m))
		return
	}
	if b, ok := v.(bool); !ok || b != want {
		t.Errorf("%q = %v, want %v", key, v, want)
	}
}

func wantNumber(t testing.TB, m map[string]any, key string) float64 {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Errorf("no %q in %v", key, keys(m))
		return 0
	}
	f, ok := v.(float64)
	if !ok {
		t.Errorf("%q is %T %v, want a number", key, v, v)
	}
	return f
}

func obj(t testing.TB, m map[string]any, key string) map[string]any {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Errorf("no %q in %v", key, keys(m))
		return map[string]any{}
	}
	o, ok := v.(map[string]any)
	if !ok {
		t.Errorf("%q is %T %v, want an object", key, v, v)
		return map[string]any{}
	}
	return o
}

func arr(t testing.TB, m map[string]any, key string) []any {
	t.Helper()
	v, ok := m[key]
	if !ok {
		t.Errorf("no %q in %v", key, keys(m))
		return nil
	}
	a, ok := v.([]any)
	if !ok {
		t.Errorf("%q is %T %v, want an array", key, v, v)
	}
	return a
}

// objects returns the objects of the array m[key].
func objects(t testing.TB, m map[string]any, key string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for i, v := range arr(t, m, key) {
		o, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s[%d] is %T, want an object", key, i, v)
			continue
		}
		out = append(out, o)
	}
	return out
}

func keys(m map[string]any) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// wantContext checks the @odata.context every Graph JSON answer carries
// (https://learn.microsoft.com/graph/api/user-post-messages, response).
func wantContext(t testing.TB, m map[string]any) {
	t.Helper()
	if c := nonEmpty(t, m, "@odata.context"); c != "" && !strings.Contains(c, "$metadata") {
		t.Errorf("@odata.context %q does not name $metadata", c)
	}
}

// wantTime checks that m[key] is an ISO 8601 date and time and returns it.
func wantTime(t testing.TB, m map[string]any, key string) time.Time {
	t.Helper()
	s := str(t, m, key)
	if s == "" {
		return time.Time{}
	}
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("%q = %q is not an ISO 8601 date and time: %v", key, s, err)
	}
	return tm
}

// wantGraphError checks Graph's error body
// (https://learn.microsoft.com/graph/errors#json-representation) and
// returns its code; code, if not empty, is the code wanted.
func wantGraphError(t testing.TB, r *graphResponse, code string) string {
	t.Helper()
	m := r.object(t)
	e := obj(t, m, "error")
	got := nonEmpty(t, e, "code")
	nonEmpty(t, e, "message")
	if code != "" && got != code {
		t.Errorf("error code %q, want %q (%s)", got, code, r)
	}
	return got
}

// wantAddress checks m[key].emailAddress.address.
func wantAddress(t testing.TB, m map[string]any, key, address string) {
	t.Helper()
	a := str(t, obj(t, obj(t, m, key), "emailAddress"), "address")
	if !strings.EqualFold(a, address) {
		t.Errorf("%s address %q, want %q", key, a, address)
	}
}

// wantRecipients checks the addresses of the recipient list m[key].
func wantRecipients(t testing.TB, m map[string]any, key string, addresses ...string) {
	t.Helper()
	var got []string
	for _, r := range objects(t, m, key) {
		got = append(got, strings.ToLower(str(t, obj(t, r, "emailAddress"), "address")))
	}
	want := []string{}
	for _, a := range addresses {
		want = append(want, strings.ToLower(a))
	}
	if !slices.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
		t.Errorf("%s %v, want %v", key, got, want)
	}
}

// Messages used by the examples.

// resumeMIME is the message of the MIME create example of
// user-post-messages ("Internal Resume Submission: Sales Associate", from
// Alex Wilber to Megan Bowen, sent 2021-02-28T07:15:00Z), with a
// Message-ID of this run.
func (g *graphTarget) resumeMIME(tag string) (raw, messageID string) {
	messageID = fmt.Sprintf("<%s-%s@mailferry.test>", tag, g.run)
	raw = "From: Alex Wilber <AlexW@contoso.com>\r\n" +
		"To: Megan Bowen <MeganB@contoso.com>\r\n" +
		"Subject: Internal Resume Submission: Sales Associate\r\n" +
		"Date: Sun, 28 Feb 2021 07:15:00 +0000\r\n" +
		"Message-ID: " + messageID + "\r\n" +
		"MIME-Version: 1.0\r\n" +
		"Content-Type: text/plain; charset=us-ascii\r\n" +
		"\r\n" +
		"Hi, Megan.\r\n\r\nI have an interest in the Sales Associate position. Please consider my resume, which you can access here...\r\n\r\nRegards,\r\nAlex\r\n"
	return raw, messageID
}

// postMIME creates a message from raw in folder ("": the mailbox, that is
// Drafts) with user-post-messages' MIME form and returns the answer.
func (g *graphTarget) postMIME(t testing.TB, folder, raw string) *graphResponse {
	t.Helper()
	p := g.userPath() + "/messages"
	if folder != "" {
		p = g.folderPath(folder) + "/messages"
	}
	return g.do(t, request{method: http.MethodPost, path: "/v1.0" + p, contentType: "text/plain",
		body: []byte(base64.StdEncoding.EncodeToString([]byte(raw)))})
}

// createDraft creates a JSON message in the run's folder (user-post-messages
// example 1) and returns its id.
func (g *graphTarget) createDraft(t testing.TB, subject string, extra map[string]any) string {
	t.Helper()
	msg := map[string]any{
		"subject":      subject,
		"importance":   "Low",
		"body":         map[string]any{"contentType": "HTML", "content": "They were <b>awesome</b>!"},
		"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "AdeleV@contoso.com"}}},
	}
	for k, v := range extra {
		msg[k] = v
	}
	r := g.expect(t, http.StatusCreated, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/messages", json: msg})
	id := nonEmpty(t, r.object(t), "id")
	if id == "" {
		t.FailNow()
	}
	return id
}

// dropFromMailbox permanently deletes, on a live tenant, a message an
// example created outside the run's folder (Drafts), so that the run
// leaves nothing behind
// (https://learn.microsoft.com/graph/api/message-permanentdelete). The
// emulator is thrown away with everything in it.
func (g *graphTarget) dropFromMailbox(t testing.TB, id string) {
	if !g.live || id == "" {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := g.send(ctx, request{method: http.MethodPost, path: "/v1.0" + g.messagePath(id) + "/permanentDelete"})
		if err != nil || r.status != http.StatusNoContent {
			t.Errorf("could not remove message %s from the mailbox (remove it by hand): %v %v", id, err, r)
		}
	})
}

// purgeDeleted permanently deletes, on a live tenant, what a DELETE of
// the message with this Message-ID left in Deleted Items.
func (g *graphTarget) purgeDeleted(t testing.TB, messageID string) {
	if !g.live {
		return
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r, err := g.send(ctx, request{method: http.MethodGet, path: "/v1.0" + g.folderPath("deleteditems") + "/messages",
			query: odataQuery("$filter", "internetMessageId eq '"+messageID+"'", "$select", "id")})
		if err != nil || r.status != http.StatusOK {
			t.Logf("could not look for %s in Deleted Items: %v %v", messageID, err, r)
			return
		}
		var list struct {
			Value []struct{ ID string } `json:"value"`
		}
		_ = json.Unmarshal(r.body, &list)
		for _, m := range list.Value {
			r, err := g.send(ctx, request{method: http.MethodPost, path: "/v1.0" + g.messagePath(m.ID) + "/permanentDelete"})
			if err != nil || r.status != http.StatusNoContent {
				t.Errorf("could not remove %s from Deleted Items (remove it by hand): %v %v", messageID, err, r)
			}
		}
	})
}

// The extended properties of the singleValueLegacyExtendedProperty
// examples.
const (
	// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties, request 1
	propFun = "String {66f5a359-4659-4830-9070-00040ec6ac6e} Name Fun"
	// the same page, request 2, and
	// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get, request 1
	propColor = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name Color"
)

// TestGraphExamples replays Microsoft's documented examples of the Graph
// mail API that mailferry relies on, one subtest per example, each named
// after its Microsoft Learn page (the URL is in a comment and in the
// test log). Requests are plain net/http; answers are checked for their
// status, their shape (@odata.context, value arrays, string ids) and the
// key fields a client relies on, not for whole-body equality.
//
// By default they run against exchangetest; with the MAILFERRY_LIVE_*
// variables of TestLiveTenant they run against that tenant's mailbox,
// inside a new top-level folder "mailferry-examples-<time>-<random>" that
// is permanently deleted at the end (a message an example must create in
// Drafts is permanently deleted as well). Run both ways, they show where
// the emulator and the service differ. The throttling examples run
// against the emulator only: a real tenant must not be driven over its
// limits.
func TestGraphExamples(t *testing.T) {
	g := newGraphTarget(t)

	t.Run("auth-concepts no token", func(t *testing.T) {
		// https://learn.microsoft.com/graph/resolve-auth-errors
		documented(t, "https://learn.microsoft.com/graph/resolve-auth-errors")
		r := g.expect(t, http.StatusUnauthorized, request{method: http.MethodGet, path: "/v1.0" + g.folderPath("inbox"), noAuth: true})
		wantGraphError(t, r, "InvalidAuthenticationToken")
	})

	t.Run("user-post-mailfolders create mailFolder", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/user-post-mailfolders
		documented(t, "https://learn.microsoft.com/graph/api/user-post-mailfolders")
		r := g.rootCreated
		if r.status != http.StatusCreated {
			t.Fatalf("want 201; got %s", r)
		}
		f := r.object(t)
		wantContext(t, f)
		nonEmpty(t, f, "id")
		if n := str(t, f, "displayName"); !strings.HasPrefix(n, "mailferry-examples-") {
			t.Errorf("displayName %q", n)
		}
		nonEmpty(t, f, "parentFolderId")
		for _, k := range []string{"childFolderCount", "unreadItemCount", "totalItemCount"} {
			if n := wantNumber(t, f, k); n != 0 {
				t.Errorf("%s = %v in a new folder", k, n)
			}
		}
		wantBool(t, f, "isHidden", false)
	})

	var visible, hidden string
	t.Run("mailfolder-post-childfolders create child folder", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/mailfolder-post-childfolders
		documented(t, "https://learn.microsoft.com/graph/api/mailfolder-post-childfolders")
		for _, c := range []struct {
			name   string
			hidden bool
			id     *string
		}{{"Internal Screens", false, &visible}, {"Clutters", true, &hidden}} {
			body := map[string]any{"displayName": c.name}
			if c.hidden {
				body["isHidden"] = true
			}
			r := g.expect(t, http.StatusCreated, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/childFolders", json: body})
			f := r.object(t)
			wantContext(t, f)
			*c.id = nonEmpty(t, f, "id")
			wantString(t, f, "displayName", c.name)
			wantString(t, f, "parentFolderId", g.root)
			wantBool(t, f, "isHidden", c.hidden)
		}
		// A second folder of the same name under the same parent is
		// refused: 409 ErrorFolderExists, the answer clients report (the
		// page documents no error).
		r := g.do(t, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/childFolders",
			json: map[string]any{"displayName": "Internal Screens"}})
		if r.status != http.StatusConflict {
			t.Errorf("a second folder of the same name: want 409; got %s", r)
		} else {
			wantGraphError(t, r, "ErrorFolderExists")
		}
	})

	t.Run("mailfolder-list-childfolders list childFolders", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/mailfolder-list-childfolders
		documented(t, "https://learn.microsoft.com/graph/api/mailfolder-list-childfolders")
		names := func(query string) map[string]map[string]any {
			r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(g.root) + "/childFolders", query: query})
			m := r.object(t)
			wantContext(t, m)
			out := map[string]map[string]any{}
			for _, f := range objects(t, m, "value") {
				nonEmpty(t, f, "id")
				wantString(t, f, "parentFolderId", g.root)
				wantNumber(t, f, "totalItemCount")
				out[str(t, f, "displayName")] = f
			}
			return out
		}
		// Example 1: hidden folders are left out by default.
		got := names("")
		if _, ok := got["Internal Screens"]; !ok || len(got) != 1 {
			t.Errorf("example 1: children %v, want only \"Internal Screens\"", slices.Sorted(maps.Keys(got)))
		}
		// Example 2: includeHiddenFolders=true lists them, with isHidden.
		got = names("includeHiddenFolders=true")
		if f, ok := got["Clutters"]; !ok || len(got) != 2 {
			t.Errorf("example 2: children %v, want \"Clutters\" and \"Internal Screens\"", slices.Sorted(maps.Keys(got)))
		} else {
			wantBool(t, f, "isHidden", true)
			wantString(t, f, "id", hidden)
		}
	})

	t.Run("mailfolder-get well-known name inbox", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/mailfolder-get and the
		// well-known folder names of
		// https://learn.microsoft.com/graph/api/resources/mailfolder
		documented(t, "https://learn.microsoft.com/graph/api/mailfolder-get")
		r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath("inbox")})
		f := r.object(t)
		wantContext(t, f)
		id := nonEmpty(t, f, "id")
		if strings.EqualFold(id, "inbox") {
			t.Errorf("id %q: the well-known name stands for the folder's id, it is not the id", id)
		}
		nonEmpty(t, f, "displayName")
		nonEmpty(t, f, "parentFolderId")
		wantNumber(t, f, "totalItemCount")
		wantNumber(t, f, "unreadItemCount")
		wantNumber(t, f, "childFolderCount")
		// The id found so names the same folder.
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(id)})
		wantString(t, r.object(t), "id", id)
	})

	t.Run("mailfolder-permanentdelete", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/mailfolder-permanentdelete
		documented(t, "https://learn.microsoft.com/graph/api/mailfolder-permanentdelete")
		r := g.expect(t, http.StatusCreated, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/childFolders",
			json: map[string]any{"displayName": "To be deleted"}})
		id := nonEmpty(t, r.object(t), "id")
		r = g.expect(t, http.StatusNoContent, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(id) + "/permanentDelete"})
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %q", r.body)
		}
		r = g.do(t, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(id)})
		if r.status != http.StatusNotFound {
			t.Errorf("the deleted folder: want 404; got %s", r)
		} else {
			wantGraphError(t, r, "ErrorItemNotFound")
		}
	})

	// checkResumeDraft checks a message created from resumeMIME against
	// the documented response of user-post-messages example 3.
	checkResumeDraft := func(t *testing.T, r *graphResponse, messageID, folder string) map[string]any {
		t.Helper()
		if r.status != http.StatusCreated {
			t.Fatalf("want 201; got %s", r)
		}
		m := r.object(t)
		wantContext(t, m)
		nonEmpty(t, m, "@odata.etag")
		nonEmpty(t, m, "id")
		wantTime(t, m, "createdDateTime")
		wantTime(t, m, "lastModifiedDateTime")
		if got := wantTime(t, m, "receivedDateTime"); !got.IsZero() && time.Since(got).Abs() > time.Hour {
			t.Errorf("receivedDateTime %v: the documented answer has the time of the create", got)
		}
		if got := wantTime(t, m, "sentDateTime"); !got.Equal(time.Date(2021, 2, 28, 7, 15, 0, 0, time.UTC)) {
			t.Errorf("sentDateTime %v, want the Date header 2021-02-28T07:15:00Z", got)
		}
		wantBool(t, m, "hasAttachments", false)
		wantString(t, m, "internetMessageId", messageID)
		wantString(t, m, "subject", "Internal Resume Submission: Sales Associate")
		if p := str(t, m, "bodyPreview"); !strings.HasPrefix(p, "Hi, Megan.") {
			t.Errorf("bodyPreview %q, want the start of the text", p)
		}
		wantString(t, m, "importance", "normal")
		wantString(t, m, "parentFolderId", folder)
		wantBool(t, m, "isRead", true)
		wantBool(t, m, "isDraft", true)
		body := obj(t, m, "body")
		wantString(t, body, "contentType", "text")
		if c := str(t, body, "content"); !strings.Contains(c, "Sales Associate position") {
			t.Errorf("body content %q", c)
		}
		wantAddress(t, m, "sender", "AlexW@contoso.com")
		wantAddress(t, m, "from", "AlexW@contoso.com")
		wantRecipients(t, m, "toRecipients", "MeganB@contoso.com")
		wantRecipients(t, m, "ccRecipients")
		wantRecipients(t, m, "bccRecipients")
		wantRecipients(t, m, "replyTo")
		arr(t, m, "categories")
		wantString(t, obj(t, m, "flag"), "flagStatus", "notFlagged")
		if _, ok := m["internetMessageHeaders"]; ok {
			t.Errorf("internetMessageHeaders in the create's answer: they are returned only with $select")
		}
		return m
	}

	t.Run("user-post-messages MIME draft", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/user-post-messages, example 3
		// (create a message in MIME format): POST /users/{id}/messages,
		// text/plain, base64 MIME; a draft in Drafts ("By default, this
		// operation saves the draft in the Drafts folder").
		documented(t, "https://learn.microsoft.com/graph/api/user-post-messages")
		drafts := nonEmpty(t, g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath("drafts")}).object(t), "id")
		raw, mid := g.resumeMIME("mime-draft")
		r := g.postMIME(t, "", raw)
		if r.status == http.StatusCreated {
			g.dropFromMailbox(t, str(t, r.object(t), "id"))
		}
		checkResumeDraft(t, r, mid, drafts)
	})

	var mimeID, mimeMessageID string
	t.Run("user-post-messages MIME into a folder", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/user-post-messages, example 3,
		// with POST /users/{id}/mailFolders/{id}/messages
		documented(t, "https://learn.microsoft.com/graph/api/user-post-messages")
		raw, mid := g.resumeMIME("mime-folder")
		m := checkResumeDraft(t, g.postMIME(t, g.root, raw), mid, g.root)
		mimeID, mimeMessageID = str(t, m, "id"), mid
	})

	t.Run("user-post-messages invalid base64", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/user-post-messages: "If the
		// request body includes malformed MIME content, this method
		// returns 400 Bad request" ErrorMimeContentInvalidBase64String.
		documented(t, "https://learn.microsoft.com/graph/api/user-post-messages")
		r := g.do(t, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/messages", contentType: "text/plain",
			body: []byte("This is not base64 MIME content!")})
		if r.status != http.StatusBadRequest {
			t.Fatalf("want 400; got %s", r)
		}
		wantGraphError(t, r, "ErrorMimeContentInvalidBase64String")
	})

	t.Run("message-get Get MIME content", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/message-get, example 4:
		// GET …/messages/{id}/$value, 200 text/plain, the MIME.
		documented(t, "https://learn.microsoft.com/graph/api/message-get")
		if mimeID == "" {
			t.Skip("no message: the MIME create failed")
		}
		r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(mimeID) + "/$value"})
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
			t.Errorf("Content-Type %q, want text/plain", ct)
		}
		mime := string(r.body)
		for _, want := range []string{"MIME-Version: 1.0", "Subject: Internal Resume Submission: Sales Associate", mimeMessageID, "Sales Associate position"} {
			if !strings.Contains(mime, want) {
				t.Errorf("the MIME has no %q:\n%s", want, mime)
			}
		}
	})

	t.Run("message resource filter internetMessageId", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/resources/message
		// (internetMessageId) and
		// https://learn.microsoft.com/graph/filter-query-parameter:
		// GET /users/{id}/messages?$filter=internetMessageId eq '<…>'.
		documented(t, "https://learn.microsoft.com/graph/filter-query-parameter")
		if mimeID == "" {
			t.Skip("no message: the MIME create failed")
		}
		for _, p := range []string{g.userPath() + "/messages", g.folderPath(g.root) + "/messages"} {
			r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + p,
				query: odataQuery("$filter", "internetMessageId eq '"+mimeMessageID+"'")})
			m := r.object(t)
			wantContext(t, m)
			var ids []string
			for _, v := range objects(t, m, "value") {
				ids = append(ids, str(t, v, "id"))
				wantString(t, v, "internetMessageId", mimeMessageID)
			}
			if !slices.Equal(ids, []string{mimeID}) {
				t.Errorf("%s: found %v, want [%s]", p, ids, mimeID)
			}
		}
		// A Message-ID that no message has finds nothing, in an empty array.
		r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(g.root) + "/messages",
			query: odataQuery("$filter", "internetMessageId eq '<nobody-"+g.run+"@mailferry.test>'")})
		if v := arr(t, r.object(t), "value"); len(v) != 0 {
			t.Errorf("an unknown Message-ID found %d messages", len(v))
		}
	})

	t.Run("mailfolder-importmime beta", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta:
		// POST /users/{id}/mailFolders/{id}/importMime, text/plain, the
		// whole body base64 MIME; 201 and a message with isDraft false,
		// "as if it was delivered", the full MIME kept "including
		// internet message headers, body parts, and attachments".
		documented(t, "https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta")
		mid := "<import-" + g.run + "@mailferry.test>"
		pdf := []byte("%PDF-1.4\n% mailferry example\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
		raw := "From: Alex Wilber <AlexW@contoso.com>\r\n" +
			"To: Megan Bowen <MeganB@contoso.com>\r\n" +
			"Subject: Quarterly report\r\n" +
			"Date: Mon, 01 Mar 2021 09:30:00 +0000\r\n" +
			"Message-ID: " + mid + "\r\n" +
			"X-Mailferry-Example: importMime\r\n" +
			"MIME-Version: 1.0\r\n" +
			"Content-Type: multipart/mixed; boundary=\"example-boundary\"\r\n" +
			"\r\n" +
			"--example-boundary\r\n" +
			"Content-Type: text/plain; charset=us-ascii\r\n" +
			"\r\n" +
			"Hi Megan, the report is attached.\r\n" +
			"--example-boundary\r\n" +
			"Content-Type: application/pdf; name=\"report.pdf\"\r\n" +
			"Content-Disposition: attachment; filename=\"report.pdf\"\r\n" +
			"Content-Transfer-Encoding: base64\r\n" +
			"\r\n" +
			base64.StdEncoding.EncodeToString(pdf) + "\r\n" +
			"--example-boundary--\r\n"
		r := g.expect(t, http.StatusCreated, request{method: http.MethodPost, path: "/beta" + g.folderPath(g.root) + "/importMime",
			contentType: "text/plain", body: []byte(base64.StdEncoding.EncodeToString([]byte(raw)))})
		m := r.object(t)
		wantContext(t, m)
		id := nonEmpty(t, m, "id")
		wantBool(t, m, "isDraft", false)
		wantString(t, m, "parentFolderId", g.root)
		wantString(t, m, "subject", "Quarterly report")
		wantString(t, m, "internetMessageId", mid)
		wantBool(t, m, "hasAttachments", true)
		wantAddress(t, m, "from", "AlexW@contoso.com")
		wantRecipients(t, m, "toRecipients", "MeganB@contoso.com")
		if p := str(t, m, "bodyPreview"); !strings.HasPrefix(p, "Hi Megan, the report is attached.") {
			t.Errorf("bodyPreview %q", p)
		}
		if got := wantTime(t, m, "sentDateTime"); !got.Equal(time.Date(2021, 3, 1, 9, 30, 0, 0, time.UTC)) {
			t.Errorf("sentDateTime %v, want the Date header", got)
		}
		if id == "" {
			return
		}
		// The MIME is kept: headers, body part and attachment.
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id) + "/$value"})
		for _, want := range []string{"X-Mailferry-Example: importMime", "Message-ID: " + mid, "Hi Megan, the report is attached.", "report.pdf"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("$value has no %q:\n%s", want, r.body)
			}
		}
		// Its headers, through message-get example 2
		// (https://learn.microsoft.com/graph/api/message-get: $select=internetMessageHeaders).
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id), query: "$select=internetMessageHeaders"})
		hs := map[string]string{}
		for _, h := range objects(t, r.object(t), "internetMessageHeaders") {
			hs[strings.ToLower(str(t, h, "name"))] = str(t, h, "value")
		}
		if hs["x-mailferry-example"] != "importMime" || hs["message-id"] != mid {
			t.Errorf("internetMessageHeaders %v, want X-Mailferry-Example and Message-ID", hs)
		}
		// Its attachment
		// (https://learn.microsoft.com/graph/api/message-list-attachments).
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id) + "/attachments"})
		atts := objects(t, r.object(t), "value")
		if len(atts) != 1 {
			t.Fatalf("%d attachments, want 1: %s", len(atts), r)
		}
		wantString(t, atts[0], "@odata.type", "#microsoft.graph.fileAttachment")
		wantString(t, atts[0], "name", "report.pdf")
		wantBool(t, atts[0], "isInline", false)
		if b, err := base64.StdEncoding.DecodeString(str(t, atts[0], "contentBytes")); err != nil || !bytes.Equal(b, pdf) {
			t.Errorf("contentBytes: %v, %d bytes, want the %d of the MIME part", err, len(b), len(pdf))
		}
	})

	t.Run("mailfolder-importmime is not in v1.0", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta
		// has no v1.0 version: under v1.0 the segment is unknown.
		documented(t, "https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta")
		raw, _ := g.resumeMIME("import-v1")
		r := g.do(t, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/importMime",
			contentType: "text/plain", body: []byte(base64.StdEncoding.EncodeToString([]byte(raw)))})
		if r.status != http.StatusBadRequest {
			t.Fatalf("want 400 (no importMime under v1.0); got %s", r)
		}
		wantGraphError(t, r, "BadRequest")
	})

	t.Run("user-post-messages JSON with custom headers", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/user-post-messages, example 2:
		// internetMessageHeaders are not returned by default; $select
		// returns them (https://learn.microsoft.com/graph/api/message-get, example 2).
		documented(t, "https://learn.microsoft.com/graph/api/user-post-messages")
		r := g.expect(t, http.StatusCreated, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/messages",
			json: map[string]any{
				"subject":      "9/8/2018: concert",
				"body":         map[string]any{"contentType": "HTML", "content": "The group represents Washington."},
				"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "AlexW@contoso.com"}}},
				"internetMessageHeaders": []any{
					map[string]any{"name": "x-custom-header-group-name", "value": "Washington"},
					map[string]any{"name": "x-custom-header-group-id", "value": "WA001"},
				},
			}})
		m := r.object(t)
		wantContext(t, m)
		id := nonEmpty(t, m, "id")
		wantString(t, m, "subject", "9/8/2018: concert")
		wantString(t, m, "bodyPreview", "The group represents Washington.")
		wantString(t, m, "importance", "normal")
		wantBool(t, m, "isDraft", true)
		wantString(t, obj(t, m, "body"), "contentType", "html")
		wantString(t, obj(t, m, "flag"), "flagStatus", "notFlagged")
		if _, ok := m["internetMessageHeaders"]; ok {
			t.Errorf("internetMessageHeaders in the POST's answer: \"not returned by default\"")
		}
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id), query: "$select=internetMessageHeaders"})
		hs := map[string]string{}
		for _, h := range objects(t, r.object(t), "internetMessageHeaders") {
			hs[strings.ToLower(str(t, h, "name"))] = str(t, h, "value")
		}
		if hs["x-custom-header-group-name"] != "Washington" || hs["x-custom-header-group-id"] != "WA001" {
			t.Errorf("internetMessageHeaders %v, want the two custom headers", hs)
		}
	})

	var colorID string
	t.Run("singlevaluelegacyextendedproperty-post-singlevalueextendedproperties", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties:
		// create a message with a single-value extended property (201,
		// "The response does not include any newly created extended
		// properties"), then create one in an existing message with PATCH
		// (request 2: 200, the message without the property).
		documented(t, "https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-post-singlevalueextendedproperties")
		r := g.expect(t, http.StatusCreated, request{method: http.MethodPost, path: "/v1.0" + g.folderPath(g.root) + "/messages",
			json: map[string]any{
				"subject":      "Did you see last night's game?",
				"importance":   "Low",
				"body":         map[string]any{"contentType": "HTML", "content": "They were <b>awesome</b>!"},
				"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "AdeleV@contoso.com"}}},
				"singleValueExtendedProperties": []any{
					map[string]any{"id": propFun, "value": "Food"},
				},
			}})
		m := r.object(t)
		wantContext(t, m)
		colorID = nonEmpty(t, m, "id")
		// user-post-messages example 1, the same message.
		wantString(t, m, "subject", "Did you see last night's game?")
		wantString(t, m, "importance", "low")
		wantString(t, m, "bodyPreview", "They were awesome!")
		wantBool(t, m, "isDraft", true)
		wantString(t, obj(t, m, "body"), "contentType", "html")
		if c := str(t, obj(t, m, "body"), "content"); !strings.Contains(c, "They were <b>awesome</b>!") {
			t.Errorf("body content %q", c)
		}
		wantRecipients(t, m, "toRecipients", "AdeleV@contoso.com")
		if _, ok := m["singleValueExtendedProperties"]; ok {
			t.Errorf("the create's answer includes singleValueExtendedProperties")
		}
		if colorID == "" {
			return
		}
		r = g.expect(t, http.StatusOK, request{method: http.MethodPatch, path: "/v1.0" + g.messagePath(colorID),
			json: map[string]any{"singleValueExtendedProperties": []any{map[string]any{"id": propColor, "value": "Green"}}}})
		m = r.object(t)
		wantString(t, m, "id", colorID)
		if _, ok := m["singleValueExtendedProperties"]; ok {
			t.Errorf("the PATCH's answer includes singleValueExtendedProperties")
		}
	})

	t.Run("singlevaluelegacyextendedproperty-get", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get
		documented(t, "https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get")
		if colorID == "" {
			t.Skip("no message: the create with an extended property failed")
		}
		// Request 1: the message expanded with the property matching the
		// filter, and only it.
		expand := func(prop string) []map[string]any {
			r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(colorID),
				query: odataQuery("$expand", "singleValueExtendedProperties($filter=id eq '"+prop+"')")})
			m := r.object(t)
			wantContext(t, m)
			wantString(t, m, "id", colorID)
			nonEmpty(t, m, "subject")
			return objects(t, m, "singleValueExtendedProperties")
		}
		for prop, value := range map[string]string{propColor: "Green", propFun: "Food"} {
			ps := expand(prop)
			if len(ps) != 1 {
				t.Errorf("%s: %d properties, want 1: %v", prop, len(ps), ps)
				continue
			}
			wantString(t, ps[0], "id", prop)
			wantString(t, ps[0], "value", value)
		}
		// Request 2: messages with the property, by $filter on id and
		// value; the answer does not include the property.
		r := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(g.root) + "/messages",
			query: odataQuery("$filter", "singleValueExtendedProperties/Any(ep: ep/id eq '"+propColor+"' and ep/value eq 'Green')")})
		m := r.object(t)
		wantContext(t, m)
		var ids []string
		for _, v := range objects(t, m, "value") {
			ids = append(ids, str(t, v, "id"))
			if _, ok := v["singleValueExtendedProperties"]; ok {
				t.Errorf("the filtered list includes singleValueExtendedProperties")
			}
		}
		if !slices.Equal(ids, []string{colorID}) {
			t.Errorf("request 2 found %v, want [%s]", ids, colorID)
		}
		// Request 3: contains(ep/value, 'green') matches too (values are
		// compared case-insensitively, "Light green" would match).
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(g.root) + "/messages",
			query: odataQuery("$filter", "singleValueExtendedProperties/any(ep:ep/id eq '"+propColor+"' and contains(ep/value, 'green'))")})
		ids = nil
		for _, v := range objects(t, r.object(t), "value") {
			ids = append(ids, str(t, v, "id"))
		}
		if !slices.Equal(ids, []string{colorID}) {
			t.Errorf("request 3 found %v, want [%s]", ids, colorID)
		}
	})

	t.Run("message-update", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/message-update: 200 and
		// the updated message.
		documented(t, "https://learn.microsoft.com/graph/api/message-update")
		id := g.createDraft(t, "To be updated", nil)
		before := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id)}).object(t)
		etag := nonEmpty(t, before, "@odata.etag")

		// The page's example (subject and body are updatable on a draft).
		r := g.expect(t, http.StatusOK, request{method: http.MethodPatch, path: "/v1.0" + g.messagePath(id), json: map[string]any{
			"subject":                 "subject-value",
			"body":                    map[string]any{"contentType": "", "content": "content-value"},
			"inferenceClassification": "other",
		}})
		m := r.object(t)
		wantString(t, m, "id", id)
		wantString(t, m, "subject", "subject-value")
		if c := str(t, obj(t, m, "body"), "content"); !strings.Contains(c, "content-value") {
			t.Errorf("body content %q", c)
		}
		wantString(t, m, "inferenceClassification", "other")

		// isRead, flag (followupFlag: a due date needs a start date) and
		// categories, the properties a migration carries.
		r = g.expect(t, http.StatusOK, request{method: http.MethodPatch, path: "/v1.0" + g.messagePath(id), json: map[string]any{
			"isRead": false,
			"flag": map[string]any{
				"flagStatus":    "flagged",
				"startDateTime": map[string]any{"dateTime": "2021-03-01T08:00:00", "timeZone": "UTC"},
				"dueDateTime":   map[string]any{"dateTime": "2021-03-05T17:00:00", "timeZone": "UTC"},
			},
			"categories": []any{"Red category"},
		}})
		m = r.object(t)
		wantContext(t, m)
		wantBool(t, m, "isRead", false)
		flag := obj(t, m, "flag")
		wantString(t, flag, "flagStatus", "flagged")
		for k, day := range map[string]string{"startDateTime": "2021-03-01", "dueDateTime": "2021-03-05"} {
			d := obj(t, flag, k)
			if s := str(t, d, "dateTime"); !strings.HasPrefix(s, day) {
				t.Errorf("flag.%s.dateTime %q, want %s…", k, s, day)
			}
			nonEmpty(t, d, "timeZone")
		}
		if c := arr(t, m, "categories"); !slices.Equal(c, []any{"Red category"}) {
			t.Errorf("categories %v", c)
		}
		// The item changed: its ETag did.
		if e := nonEmpty(t, m, "@odata.etag"); e == etag {
			t.Errorf("@odata.etag %q did not change with the PATCH", e)
		}
		r = g.expect(t, http.StatusOK, request{method: http.MethodPatch, path: "/v1.0" + g.messagePath(id),
			json: map[string]any{"isRead": true, "flag": map[string]any{"flagStatus": "complete"}}})
		m = r.object(t)
		wantBool(t, m, "isRead", true)
		wantString(t, obj(t, m, "flag"), "flagStatus", "complete")

		// https://learn.microsoft.com/graph/api/resources/followupflag:
		// "To set the due date, you must also specify the startDateTime;
		// otherwise, you will get a 400 Bad Request response."
		r = g.do(t, request{method: http.MethodPatch, path: "/v1.0" + g.messagePath(id), json: map[string]any{
			"flag": map[string]any{"flagStatus": "flagged", "dueDateTime": map[string]any{"dateTime": "2021-03-05T17:00:00", "timeZone": "UTC"}},
		}})
		if r.status != http.StatusBadRequest {
			t.Errorf("a due date without a start date: want 400; got %s", r)
		} else {
			wantGraphError(t, r, "")
		}
	})

	t.Run("attachment-createuploadsession and outlook-large-attachments", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/attachment-createuploadsession
		// and https://learn.microsoft.com/graph/outlook-large-attachments:
		// the session (201), the PUTs of the walkthrough (2,097,152 bytes,
		// then the 1,386,170 left: 200, then 201 with a Location), the
		// attachment's metadata and raw bytes.
		documented(t, "https://learn.microsoft.com/graph/outlook-large-attachments")
		const size = 3483322
		file := make([]byte, size)
		rng := mrand.New(mrand.NewPCG(1, 2))
		for i := range file {
			file[i] = byte(rng.Uint32())
		}
		id := g.createDraft(t, "Large attachment", nil)
		session := func(name string, size int) *graphResponse {
			return g.do(t, request{method: http.MethodPost, path: "/v1.0" + g.messagePath(id) + "/attachments/createUploadSession",
				json: map[string]any{"AttachmentItem": map[string]any{"attachmentType": "file", "name": name, "size": size}}})
		}
		r := session("flower", size)
		if r.status != http.StatusCreated {
			t.Fatalf("createUploadSession: want 201; got %s", r)
		}
		s := r.object(t)
		wantContext(t, s)
		uploadURL := nonEmpty(t, s, "uploadUrl")
		if u, err := url.Parse(uploadURL); err != nil || !u.IsAbs() {
			t.Fatalf("uploadUrl %q is not an absolute URL", uploadURL)
		}
		exp := wantTime(t, s, "expirationDateTime")
		if !exp.IsZero() && !exp.After(time.Now().Add(-time.Minute)) {
			t.Errorf("expirationDateTime %v is past", exp)
		}
		if got := arr(t, s, "nextExpectedRanges"); !slices.Equal(got, []any{"0-"}) {
			t.Errorf("nextExpectedRanges %v, want [0-]", got)
		}

		put := func(from, to int) *graphResponse {
			return g.do(t, request{method: http.MethodPut, abs: uploadURL, contentType: "application/octet-stream", body: file[from : to+1],
				header: map[string]string{"Content-Range": fmt.Sprintf("bytes %d-%d/%d", from, to, size)}})
		}
		r = put(0, 2097151)
		if r.status != http.StatusOK {
			t.Fatalf("first PUT: want 200; got %s", r)
		}
		if got := arr(t, r.object(t), "nextExpectedRanges"); !slices.Equal(got, []any{"2097152"}) {
			t.Errorf("first PUT: nextExpectedRanges %v, want [2097152]", got)
		}
		r = put(2097152, size-1)
		if r.status != http.StatusCreated {
			t.Fatalf("final PUT: want 201; got %s", r)
		}
		loc := r.header.Get("Location")
		match := regexp.MustCompile(`(?i)/Attachments\('([^']+)'\)`).FindStringSubmatch(loc)
		if match == nil {
			t.Fatalf("final PUT: Location %q names no attachment", loc)
		}
		attID, err := url.PathUnescape(match[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(r.body)) != 0 {
			t.Errorf("final PUT: a body %q, want none (Content-Length: 0)", r.body)
		}

		// Step 4: the metadata ($select, without contentBytes) and the raw
		// bytes (https://learn.microsoft.com/graph/api/attachment-get, examples 1 and 6).
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id) + "/attachments/" + url.PathEscape(attID),
			query: "$select=lastModifiedDateTime,name,contentType,size,isInline"})
		a := r.object(t)
		wantContext(t, a)
		wantString(t, a, "@odata.type", "#microsoft.graph.fileAttachment")
		wantString(t, a, "id", attID)
		wantString(t, a, "name", "flower")
		wantBool(t, a, "isInline", false)
		wantTime(t, a, "lastModifiedDateTime")
		if n := wantNumber(t, a, "size"); n < size {
			t.Errorf("size %v, want at least the file's %d bytes", n, size)
		}
		if _, ok := a["contentBytes"]; ok {
			t.Errorf("contentBytes returned although $select left it out")
		}
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id) + "/attachments/" + url.PathEscape(attID) + "/$value"})
		if !bytes.Equal(r.body, file) {
			t.Errorf("$value: %d bytes, not the %d uploaded", len(r.body), size)
		}
		m := g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id)}).object(t)
		wantBool(t, m, "hasAttachments", true)

		// Alternative: cancel an upload session, 204.
		r = session("scenary", 7208534)
		if r.status != http.StatusCreated {
			t.Fatalf("second createUploadSession: want 201; got %s", r)
		}
		cancelURL := str(t, r.object(t), "uploadUrl")
		r = g.do(t, request{method: http.MethodDelete, abs: cancelURL})
		if r.status != http.StatusNoContent {
			t.Errorf("cancel the session: want 204; got %s", r)
		}

		// Errors: ErrorAttachmentSizeShouldNotBeLessThanMinimumSize for a
		// file under 3 MB.
		r = session("small", 1024)
		if r.status != http.StatusBadRequest {
			t.Errorf("a session for 1024 bytes: want 400; got %s", r)
		} else {
			wantGraphError(t, r, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize")
		}
	})

	t.Run("message-delete", func(t *testing.T) {
		// https://learn.microsoft.com/graph/api/message-delete: 204 and no
		// body; the message is gone from its folder.
		documented(t, "https://learn.microsoft.com/graph/api/message-delete")
		raw, mid := g.resumeMIME("delete")
		r := g.postMIME(t, g.root, raw)
		if r.status != http.StatusCreated {
			t.Fatalf("create: want 201; got %s", r)
		}
		id := nonEmpty(t, r.object(t), "id")
		g.purgeDeleted(t, mid)
		r = g.expect(t, http.StatusNoContent, request{method: http.MethodDelete, path: "/v1.0" + g.messagePath(id)})
		if len(r.body) != 0 {
			t.Errorf("204 with a body: %q", r.body)
		}
		r = g.do(t, request{method: http.MethodGet, path: "/v1.0" + g.messagePath(id)})
		if r.status != http.StatusNotFound {
			t.Errorf("the deleted message: want 404; got %s", r)
		} else {
			wantGraphError(t, r, "ErrorItemNotFound")
		}
		r = g.expect(t, http.StatusOK, request{method: http.MethodGet, path: "/v1.0" + g.folderPath(g.root) + "/messages",
			query: odataQuery("$filter", "internetMessageId eq '"+mid+"'")})
		if v := arr(t, r.object(t), "value"); len(v) != 0 {
			t.Errorf("the deleted message is still listed in its folder")
		}
	})

	// batchResponses posts a $batch and returns its answer and responses by
	// id.
	batch := func(t *testing.T, requests []any) (*graphResponse, map[string]map[string]any) {
		t.Helper()
		r := g.do(t, request{method: http.MethodPost, path: "/v1.0/$batch", json: map[string]any{"requests": requests},
			header: map[string]string{"Accept": "application/json"}})
		if r.status != http.StatusOK {
			return r, nil
		}
		if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("Content-Type %q, want application/json", ct)
		}
		byID := map[string]map[string]any{}
		for _, sub := range objects(t, r.object(t), "responses") {
			id := nonEmpty(t, sub, "id")
			if _, dup := byID[id]; dup {
				t.Errorf("two responses for id %q", id)
			}
			byID[id] = sub
			wantNumber(t, sub, "status")
		}
		return r, byID
	}
	status := func(sub map[string]any) int {
		f, _ := sub["status"].(float64)
		return int(f)
	}
	root := g.folderPath(g.root)

	t.Run("json-batching multiple requests", func(t *testing.T) {
		// https://learn.microsoft.com/graph/json-batching: one POST /$batch,
		// 200, a responses array correlated by id, each with its own
		// status, headers and body; a 200 envelope says nothing of the
		// requests, each failed one carries its error.
		documented(t, "https://learn.microsoft.com/graph/json-batching")
		r, subs := batch(t, []any{
			map[string]any{"id": "1", "method": "GET", "url": root},
			map[string]any{"id": "2", "method": "GET", "url": root + "/messages?$select=subject"},
			map[string]any{"id": "3", "method": "POST", "url": root + "/messages",
				"body":    map[string]any{"subject": "Created in a batch", "body": map[string]any{"contentType": "Text", "content": "Batched."}},
				"headers": map[string]string{"Content-Type": "application/json"}},
			map[string]any{"id": "4", "method": "GET", "url": root + "/childFolders/AAMkADNoSuchFolderAAA="},
			map[string]any{"id": "5", "method": "GET", "url": g.folderPath("inbox") + "/childFolders?$top=1"},
		})
		if subs == nil {
			t.Fatalf("want 200; got %s", r)
		}
		if len(subs) != 5 {
			t.Fatalf("%d responses, want 5: %s", len(subs), r)
		}
		for id, sub := range subs {
			if _, ok := sub["headers"].(map[string]any); !ok {
				t.Errorf("response %s: no headers object", id)
			}
		}
		if s := subs["1"]; status(s) != http.StatusOK {
			t.Errorf("1: status %d, want 200: %v", status(s), s)
		} else {
			b := obj(t, s, "body")
			wantContext(t, b)
			wantString(t, b, "id", g.root)
		}
		if s := subs["2"]; status(s) != http.StatusOK {
			t.Errorf("2: status %d, want 200: %v", status(s), s)
		} else {
			b := obj(t, s, "body")
			wantContext(t, b)
			arr(t, b, "value")
		}
		if s := subs["3"]; status(s) != http.StatusCreated {
			t.Errorf("3: status %d, want 201: %v", status(s), s)
		} else {
			b := obj(t, s, "body")
			nonEmpty(t, b, "id")
			wantString(t, b, "subject", "Created in a batch")
			wantString(t, b, "parentFolderId", g.root)
		}
		if s := subs["4"]; status(s) < 400 || status(s) >= 500 {
			t.Errorf("4: status %d, want a 4xx error: %v", status(s), s)
		} else {
			e := obj(t, obj(t, s, "body"), "error")
			nonEmpty(t, e, "code")
			nonEmpty(t, e, "message")
		}
		if s := subs["5"]; status(s) != http.StatusOK {
			t.Errorf("5: status %d, want 200: %v", status(s), s)
		} else {
			arr(t, obj(t, s, "body"), "value")
		}
	})

	t.Run("json-batching dependsOn", func(t *testing.T) {
		// https://learn.microsoft.com/graph/json-batching#sequencing-requests-with-the-dependson-property:
		// "If an individual request fails, any request that depends on
		// that request fails with status code 424 (Failed Dependency)."
		// The batch is fully sequential, as the page's tip asks.
		documented(t, "https://learn.microsoft.com/graph/json-batching")
		r, subs := batch(t, []any{
			map[string]any{"id": "1", "method": "POST", "url": root + "/messages",
				"body":    map[string]any{"subject": "First of a sequence"},
				"headers": map[string]string{"Content-Type": "application/json"}},
			map[string]any{"id": "2", "dependsOn": []string{"1"}, "method": "GET", "url": root + "/messages?$select=subject"},
			map[string]any{"id": "3", "dependsOn": []string{"2"}, "method": "GET", "url": g.userPath() + "/messages/AAMkADNoSuchMessageAAA="},
			map[string]any{"id": "4", "dependsOn": []string{"3"}, "method": "GET", "url": root},
		})
		if subs == nil {
			t.Fatalf("want 200; got %s", r)
		}
		want := map[string]func(int) bool{
			"1": func(s int) bool { return s == http.StatusCreated },
			"2": func(s int) bool { return s == http.StatusOK },
			"3": func(s int) bool { return s >= 400 && s < 500 },
			"4": func(s int) bool { return s == http.StatusFailedDependency },
		}
		for id, ok := range want {
			s, found := subs[id]
			if !found {
				t.Errorf("no response %s", id)
				continue
			}
			if !ok(status(s)) {
				t.Errorf("%s: status %d: %v", id, status(s), s)
			}
		}
		if s, ok := subs["2"]; ok && status(s) == http.StatusOK {
			found := false
			for _, m := range objects(t, obj(t, s, "body"), "value") {
				found = found || str(t, m, "subject") == "First of a sequence"
			}
			if !found {
				t.Errorf("2 ran before 1: the message 1 created is not listed")
			}
		}
	})

	t.Run("json-batching limit of 20 requests", func(t *testing.T) {
		// https://learn.microsoft.com/graph/json-batching#batch-size-limitations:
		// "JSON batch requests are currently limited to 20 individual
		// requests"; a malformed batch answers 400.
		documented(t, "https://learn.microsoft.com/graph/json-batching")
		var reqs []any
		for i := 1; i <= 20; i++ {
			reqs = append(reqs, map[string]any{"id": strconv.Itoa(i), "method": "GET", "url": root})
		}
		if r, subs := batch(t, reqs); subs == nil || len(subs) != 20 {
			t.Errorf("20 requests: want 200 and 20 responses; got %s", r)
		}
		reqs = append(reqs, map[string]any{"id": "21", "method": "GET", "url": root})
		r, subs := batch(t, reqs)
		if subs != nil || r.status != http.StatusBadRequest {
			t.Fatalf("21 requests: want 400; got %s", r)
		}
		wantGraphError(t, r, "")
	})

	t.Run("json-batching unique ids", func(t *testing.T) {
		// https://learn.microsoft.com/graph/json-batching: an id is "Not
		// case-sensitive. Must be unique in the batch, otherwise, the
		// batch request fails with a 400 error code."
		documented(t, "https://learn.microsoft.com/graph/json-batching")
		for _, ids := range [][2]string{{"1", "1"}, {"a", "A"}} {
			r, subs := batch(t, []any{
				map[string]any{"id": ids[0], "method": "GET", "url": root},
				map[string]any{"id": ids[1], "method": "GET", "url": root + "/childFolders"},
			})
			if subs != nil || r.status != http.StatusBadRequest {
				t.Errorf("ids %q and %q: want 400; got %s", ids[0], ids[1], r)
				continue
			}
			wantGraphError(t, r, "")
		}
	})

	t.Run("throttling 429 Retry-After", func(t *testing.T) {
		// https://learn.microsoft.com/graph/throttling: 429 Too Many
		// Requests, a Retry-After header in seconds and an error body;
		// https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits:
		// per app per mailbox; https://learn.microsoft.com/graph/json-batching#batch-size-limitations:
		// a batched request over the limits "fails with a status of 429".
		documented(t, "https://learn.microsoft.com/graph/throttling")
		if g.live {
			t.Skip("live tenant: throttling is not forced on a real mailbox; the emulator's budget is driven over its limit instead")
		}
		now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
		const token = "throttle-token"
		srv := exchangetest.NewServer(&exchangetest.Options{Token: token, Now: func() time.Time { return now },
			Budget: &exchangetest.Budget{MaxConcurrentRequests: 4, MaxRequestsPerWindow: 3, MaxUploadBytesPerWindow: 150 << 20}})
		defer srv.Close()
		srv.AddMailbox(examplesUser)
		tg := &graphTarget{base: srv.URL(), user: examplesUser, client: srv.Client(),
			token: func(context.Context) (string, error) { return token, nil }}
		get := request{method: http.MethodGet, path: "/v1.0" + tg.folderPath("inbox")}
		for i := 0; i < 3; i++ {
			tg.expect(t, http.StatusOK, get)
		}
		r := tg.expect(t, http.StatusTooManyRequests, get)
		checkRetryAfter(t, r.header.Get("Retry-After"))
		wantGraphError(t, r, "")

		// In a batch, on a fresh mailbox: each request is evaluated on its
		// own; the envelope is 200 and the requests over the limit are 429,
		// each with its Retry-After.
		srv.AddMailbox("adelev@contoso.com")
		tg.user = "adelev@contoso.com"
		var reqs []any
		for i := 1; i <= 5; i++ {
			reqs = append(reqs, map[string]any{"id": strconv.Itoa(i), "method": "GET", "url": tg.folderPath("inbox")})
		}
		r = tg.expect(t, http.StatusOK, request{method: http.MethodPost, path: "/v1.0/$batch", json: map[string]any{"requests": reqs}})
		throttled := 0
		for _, sub := range objects(t, r.object(t), "responses") {
			switch st, _ := sub["status"].(float64); int(st) {
			case http.StatusOK:
			case http.StatusTooManyRequests:
				throttled++
				h, _ := sub["headers"].(map[string]any)
				ra, _ := h["Retry-After"].(string)
				checkRetryAfter(t, ra)
				e := obj(t, obj(t, sub, "body"), "error")
				nonEmpty(t, e, "code")
			default:
				t.Errorf("a batched request answered %v: %v", st, sub)
			}
		}
		if throttled == 0 {
			t.Errorf("5 batched requests on a budget of 3: none throttled: %s", r)
		}
	})
}

// checkRetryAfter checks a Retry-After value: a whole number of seconds,
// at least 1 (https://learn.microsoft.com/graph/throttling).
func checkRetryAfter(t testing.TB, v string) {
	t.Helper()
	if n, err := strconv.Atoi(v); err != nil || n <= 0 {
		t.Errorf("Retry-After %q, want a positive number of seconds", v)
	}
}
