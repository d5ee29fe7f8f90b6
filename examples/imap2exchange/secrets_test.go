package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailferry/mailferry/exchange"
	"github.com/mailferry/mailferry/exchange/exchangetest"
	"github.com/mailferry/mailferry/imapsrc"
	"github.com/mailferry/mailferry/imapsrc/imapsrctest"
	"github.com/mailferry/mailferry/internal/dovecottest"
	"github.com/mailferry/mailferry/migrate"
	"github.com/mailferry/mailferry/migrate/boltstate"
	"github.com/mailferry/mailferry/migrate/migratetest"
)

// The secrets of TestSecrets: each distinctive, so that finding one
// anywhere can only mean it leaked.
const (
	secretAlicePw     = "alice-IMAP-pw-4f7d1c"
	secretBobPw       = "bob-IMAP-pw-9e2a6b"
	secretCarolWrong  = "carol-WRONG-pw-3b8e0f" // refused by Dovecot
	secretClient      = "client-SECRET-d41c8e77"
	secretClientWrong = "client-WRONG-secret-5a90c3" // refused by the token service
	secretBearer      = "bearer-TOKEN-77e1b0c2f9"
	appID             = "00000000-0000-0000-0000-0000c0ffee00"
)

// tokenService is an Entra token endpoint (adfs) that gives secretBearer
// for secretClient and refuses any other secret (invalid_client, as Entra
// answers).
type tokenService struct {
	*adfs
	mu  sync.Mutex
	ok  int // tokens given
	bad int // secrets refused
}

func newTokenService(t *testing.T) *tokenService {
	ts := &tokenService{}
	ts.adfs = startADFS(t, func(r *http.Request, _ string) (string, *adfsRefusal) {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != appID ||
			r.PostForm.Get("client_secret") != secretClient {
			ts.bad++
			return "", &adfsRefusal{7000215, "AADSTS7000215: Invalid client secret provided."}
		}
		ts.ok++
		return secretBearer, nil
	})
	return ts
}

// counts returns the tokens given and the secrets refused so far.
func (ts *tokenService) counts() (ok, bad int) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.ok, ts.bad
}

// uploadTokens serves the emulator and keeps the authtoken of every
// upload session it opens, the credential of its uploadUrl.
type uploadTokens struct {
	g      *exchangetest.Server
	mu     sync.Mutex
	tokens []string
}

func (u *uploadTokens) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.URL.Path, "/createUploadSession") {
		u.g.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	u.g.ServeHTTP(rec, r)
	var sess struct {
		UploadURL string `json:"uploadUrl"`
	}
	if json.Unmarshal(rec.Body.Bytes(), &sess) == nil && sess.UploadURL != "" {
		if pu, err := url.Parse(sess.UploadURL); err == nil && pu.Query().Get("authtoken") != "" {
			u.mu.Lock()
			u.tokens = append(u.tokens, pu.Query().Get("authtoken"))
			u.mu.Unlock()
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes())
}

func (u *uploadTokens) all() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.tokens...)
}

// secretForms are the ways a secret could be written out: as it is, URL
// query-escaped, path-escaped, in base64 (a Basic header, a JSON []byte)
// and quoted as JSON.
func secretForms(s string) []string {
	q, _ := json.Marshal(s)
	forms := []string{s, url.QueryEscape(s), url.PathEscape(s), base64.StdEncoding.EncodeToString([]byte(s)),
		base64.RawURLEncoding.EncodeToString([]byte(s)), string(q)}
	// Long secrets: also their two halves, so that a truncated copy is
	// found too.
	if len(s) >= 16 {
		forms = append(forms, s[:len(s)/2], s[len(s)/2:])
	}
	return forms
}

// findSecrets returns where each secret (in any of its forms) appears
// in the captured outputs, and where an upload URL's authtoken parameter
// does.
func findSecrets(captured map[string][]byte, secrets map[string]string) []string {
	var found []string
	for what, b := range captured {
		for name, s := range secrets {
			for _, form := range secretForms(s) {
				if i := bytes.Index(b, []byte(form)); i >= 0 {
					lo, hi := max(0, i-80), min(len(b), i+len(form)+80)
					found = append(found, fmt.Sprintf("%s shows the %s (as %q): …%s…", what, name, form, b[lo:hi]))
				}
			}
		}
		if bytes.Contains(b, []byte("authtoken")) {
			found = append(found, what+" shows an upload URL's authtoken parameter")
		}
	}
	return found
}

// checkNoSecrets fails t for every secret found in the captured outputs,
// after checking that the search finds one planted in them.
func checkNoSecrets(t *testing.T, captured map[string][]byte, secrets map[string]string) {
	t.Helper()
	for name, s := range secrets {
		planted := map[string][]byte{"planted": []byte("a line with " + url.QueryEscape(s) + " in it")}
		if len(findSecrets(planted, map[string]string{name: s})) == 0 {
			t.Errorf("the search does not find the %s planted in a line", name)
		}
	}
	for _, f := range findSecrets(captured, secrets) {
		t.Error(f)
	}
}

// secretsWorld is Dovecot with alice and bob (and carol, whom the CSV
// gives a wrong password), each seeded with the sample mailbox and a
// message over 3 MB (an upload session), and the emulator, which takes
// secretBearer alone, behind uploadTokens.
type secretsWorld struct {
	dc    *dovecottest.Server
	g     *exchangetest.Server
	front *uploadTokens
	url   string
	total int // messages of alice and bob
}

func newSecretsWorld(t *testing.T) *secretsWorld {
	fx, _ := migratetest.BulkFixture(2, 0, 3<<20+1000)
	w := &secretsWorld{total: 2 * fx.Count()}
	w.dc = dovecottest.Start(t, &dovecottest.Options{Users: map[string]string{
		"alice": secretAlicePw, "bob": secretBobPw, "carol": "carol-right-pw"}})
	for u, pw := range map[string]string{"alice": secretAlicePw, "bob": secretBobPw} {
		if err := imapsrctest.Seed(w.dc.Addr(), u, pw, fx); err != nil {
			t.Fatal(err)
		}
	}
	w.g = exchangetest.NewServer(&exchangetest.Options{Token: secretBearer})
	t.Cleanup(w.g.Close)
	for _, u := range []string{"alice", "bob", "carol"} {
		w.g.AddMailbox(u + "@contoso.com")
	}
	w.front = &uploadTokens{g: w.g}
	srv := httptest.NewServer(w.front)
	t.Cleanup(srv.Close)
	w.url = srv.URL
	return w
}

// TestSecrets runs the command as a child process with known secrets —
// the IMAP passwords of the CSV (one of them wrong, so that a login
// fails), the app's client secret (MAILFERRY_CLIENT_SECRET, exchanged for
// a known bearer token at a token service of the test's, through
// AZURE_AUTHORITY_HOST; a wrong one first, refused), the bearer token
// itself (MAILFERRY_GRAPH_TOKEN, in the last run), and the authtokens of
// the upload sessions' URLs (a message over 3 MB per mailbox, one upload
// PUT refused so that its message fails) — with -v, and captures
// everything it writes: stdout, stderr, the JSON and CSV reports and the
// state file. Then it runs the same batch through the library in the
// test process (one upload PUT dropped and retried, one refused), with
// every logger (migrate, imapsrc, exchange) at debug level, every event,
// every error (Error and %#v) and every report format captured. None of
// the secrets may appear anywhere, in any form (as is, URL-escaped,
// base64, JSON-quoted, or either half), nor any "authtoken".
func TestSecrets(t *testing.T) {
	t.Parallel()
	t.Run("command", testSecretsCommand)
	t.Run("library", testSecretsLibrary)
}

func testSecretsCommand(t *testing.T) {
	t.Parallel()
	w := newSecretsWorld(t)
	ts := newTokenService(t)
	dir := t.TempDir()
	csvPath := filepath.Join(dir, "batch.csv")
	os.WriteFile(csvPath, []byte("EmailAddress,UserName,Password\n"+
		"alice@contoso.com,alice,"+secretAlicePw+"\n"+
		"bob@contoso.com,bob,"+secretBobPw+"\n"), 0o600)
	// carol, whose password is wrong, has a batch of her own, run last:
	// Dovecot delays every login from an address that failed one (its
	// auth penalty), which would hold alice and bob for seconds.
	carolCSV := filepath.Join(dir, "carol.csv")
	os.WriteFile(carolCSV, []byte("EmailAddress,UserName,Password\ncarol@contoso.com,carol,"+secretCarolWrong+"\n"), 0o600)
	// An upload PUT is refused with a 500: its message fails, with its
	// reason in the output and the reports, and the next run copies it.
	// (The command paces uploads to Exchange Online's budget, 0.5 MB/s
	// after a burst, so a retried PUT of 3 MB would cost 6 s: the dropped
	// and retried PUT is the library's case.)
	w.g.FailNextUpload(exchangetest.UploadFault{Status: http.StatusInternalServerError})
	args := []string{"-v", "-csv", csvPath, "-imap", w.dc.Addr(), "-security", "plaintext", "-graph-url", w.url,
		"-tenant", "adfs", "-client-id", appID,
		"-state", filepath.Join(dir, "state"), "-report", filepath.Join(dir, "report.json"), "-report-csv", filepath.Join(dir, "report.csv")}
	// runTool sets MAILFERRY_GRAPH_TOKEN; empty, it is not used.
	env := append([]string{"MAILFERRY_GRAPH_TOKEN="}, ts.env(t)...)
	captured := map[string][]byte{}
	start := time.Now()
	capture := func(run string, c *child) {
		t.Logf("%s: %v", run, time.Since(start).Round(time.Millisecond))
		captured[run+" stdout"] = []byte(c.stdout.String())
		captured[run+" stderr"] = []byte(c.stderr.String())
		for _, name := range []string{"report.json", "report.csv", "state"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
				captured[run+" "+name] = b
			}
		}
	}

	// A wrong client secret: refused by the token service.
	code, c := runTool(t, args, append(env, "MAILFERRY_CLIENT_SECRET="+secretClientWrong)...)
	capture("run 1 (wrong client secret)", c)
	if _, bad := ts.counts(); code == 0 || bad == 0 {
		t.Errorf("run with a wrong client secret: exit %d, %d refusals\n%s", code, bad, c.output())
	}
	// The client secret: an upload PUT refused.
	code, c = runTool(t, args, append(env, "MAILFERRY_CLIENT_SECRET="+secretClient)...)
	capture("run 2 (client secret)", c)
	rep := readReport(t, filepath.Join(dir, "report.json"))
	if ok, _ := ts.counts(); code != 1 || ok == 0 || rep.Totals().Failed != 1 {
		t.Errorf("run with the client secret: exit %d, %d tokens given, %d failed; want exit 1 and the message of the refused upload failed\n%s",
			code, ok, rep.Totals().Failed, c.output())
	}
	// The bearer token from the environment (the client secret set too):
	// the failed message is copied.
	code, c = runTool(t, args, append(env[1:], "MAILFERRY_GRAPH_TOKEN="+secretBearer, "MAILFERRY_CLIENT_SECRET="+secretClient)...)
	capture("run 3 (bearer token)", c)
	rep = readReport(t, filepath.Join(dir, "report.json"))
	if tot := rep.Totals(); code != 0 || tot.Copied != 1 || tot.Failed != 0 {
		t.Errorf("run 3: exit %d, %+v; want the message refused before copied\n%s", code, tot, c.output())
	}
	// carol's wrong password.
	for i := range args {
		if args[i] == csvPath {
			args[i] = carolCSV
		}
	}
	code, c = runTool(t, args, append(env, "MAILFERRY_CLIENT_SECRET="+secretClient)...)
	capture("run 4 (wrong IMAP password)", c)
	if code != 1 || !strings.Contains(c.stdout.String(), "carol@contoso.com: stopped") {
		t.Errorf("run 4: exit %d; want carol's login refused\n%s", code, c.output())
	}
	for _, u := range []string{"alice@contoso.com", "bob@contoso.com"} {
		if n := len(w.g.Messages(u)); n != w.total/2 {
			t.Errorf("%s holds %d messages, want %d", u, n, w.total/2)
		}
	}
	tokens := w.front.all()
	if len(tokens) < 2 {
		t.Fatalf("%d upload sessions opened, want at least 2", len(tokens))
	}
	secrets := map[string]string{"IMAP password of alice": secretAlicePw, "IMAP password of bob": secretBobPw,
		"wrong IMAP password of carol": secretCarolWrong, "client secret": secretClient, "wrong client secret": secretClientWrong,
		"bearer token": secretBearer}
	for i, tok := range tokens {
		secrets[fmt.Sprintf("authtoken of upload session %d", i+1)] = tok
	}
	checkNoSecrets(t, captured, secrets)
	var size int
	for _, b := range captured {
		size += len(b)
	}
	t.Logf("searched %d outputs (%d bytes) for %d secrets in %d forms each", len(captured), size, len(secrets), len(secretForms(secretBearer)))
}

func readReport(t *testing.T, path string) *migrate.Report {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rep migrate.Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &rep
}

func testSecretsLibrary(t *testing.T) {
	t.Parallel()
	w := newSecretsWorld(t)
	var logs bytes.Buffer
	var logMu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// The first upload PUT loses its connection (retried, logged), the
	// second is refused with a 500 (its message fails, and the second run
	// copies it). Pacing is off: the emulator enforces no budget.
	w.g.FailNextUpload(exchangetest.UploadFault{}, exchangetest.UploadFault{Status: http.StatusInternalServerError})
	client, err := exchange.NewClient(&exchange.Options{Credential: exchange.StaticToken(secretBearer), BaseURL: w.url,
		Logger: logger, Budget: &exchange.Budget{}})
	if err != nil {
		t.Fatal(err)
	}
	statePath := filepath.Join(t.TempDir(), "state")
	state, err := boltstate.Open(statePath, nil)
	if err != nil {
		t.Fatal(err)
	}
	var events bytes.Buffer
	var errs []string
	eng := migrate.NewEngine(&migrate.Options{State: state, Logger: logger, OnEvent: func(e migrate.Event) {
		fmt.Fprintf(&events, "%+v\n", e)
		if e.Err != nil {
			fmt.Fprintf(&events, "%v\n%#v\n", e.Err, e.Err)
		}
	}})
	var jobs []migrate.Job
	for _, u := range []struct{ name, pw string }{{"alice", secretAlicePw}, {"bob", secretBobPw}, {"carol", secretCarolWrong}} {
		src := imapsrc.New(&imapsrc.Options{Addr: w.dc.Addr(), Username: u.name, Password: u.pw, Security: imapsrc.Plaintext, Logger: logger})
		defer src.Close()
		fmt.Fprintf(&events, "source %v\n", src)
		jobs = append(jobs, migrate.Job{Mailbox: u.name + "@contoso.com", Source: src, Sink: client.Mailbox(u.name + "@contoso.com")})
	}
	captured := map[string][]byte{}
	// alice and bob twice, then carol, whose password is wrong, alone (see
	// testSecretsCommand).
	for run, batch := range [][]migrate.Job{jobs[:2], jobs[:2], jobs[2:]} {
		run++
		start := time.Now()
		rep := eng.Run(t.Context(), batch...)
		t.Logf("library run %d: %v", run, time.Since(start).Round(time.Millisecond))
		var b bytes.Buffer
		rep.WriteJSON(&b)
		rep.WriteCSV(&b)
		rep.WriteText(&b)
		fmt.Fprintf(&b, "%+v\n", rep)
		for _, mb := range rep.Mailboxes {
			fmt.Fprintf(&b, "%+v\n", *mb)
			if mb.Err != nil {
				errs = append(errs, mb.Err.Error(), fmt.Sprintf("%#v", mb.Err))
			}
			for _, p := range mb.Problems {
				errs = append(errs, p.Err.Error(), fmt.Sprintf("%#v", p.Err))
			}
			for _, f := range mb.Folders {
				if f.Err != nil {
					errs = append(errs, f.Err.Error(), fmt.Sprintf("%#v", f.Err))
				}
			}
		}
		captured[fmt.Sprintf("run %d reports", run)] = b.Bytes()
		if tot := rep.Totals(); run == 1 && tot.Failed == 0 {
			t.Errorf("run 1 failed no message: the refused upload was not exercised")
		}
	}
	if err := state.Close(); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(statePath); err == nil {
		captured["state"] = b
	}
	if len(errs) == 0 {
		t.Errorf("no error to search")
	}
	logMu.Lock()
	captured["logs"] = logs.Bytes()
	logMu.Unlock()
	captured["events"] = events.Bytes()
	captured["errors"] = []byte(strings.Join(errs, "\n"))
	for _, u := range []string{"alice@contoso.com", "bob@contoso.com"} {
		if n := len(w.g.Messages(u)); n != w.total/2 {
			t.Errorf("%s holds %d messages, want %d", u, n, w.total/2)
		}
	}
	if !bytes.Contains(captured["logs"], []byte("retrying Graph request")) {
		t.Errorf("the logs show no retried request: the dropped upload PUT was not exercised")
	}
	secrets := map[string]string{"IMAP password of alice": secretAlicePw, "IMAP password of bob": secretBobPw,
		"wrong IMAP password of carol": secretCarolWrong, "bearer token": secretBearer}
	for i, tok := range w.front.all() {
		secrets[fmt.Sprintf("authtoken of upload session %d", i+1)] = tok
	}
	checkNoSecrets(t, captured, secrets)
	t.Logf("searched logs (%d bytes), events (%d bytes), %d errors, reports and state for %d secrets",
		len(captured["logs"]), len(captured["events"]), len(errs), len(secrets))
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
