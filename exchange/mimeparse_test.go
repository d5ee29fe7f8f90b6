package exchange

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"unicode/utf8"

	"github.com/mailferry/mailferry/migrate"
)

func TestParseMIMENames(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--b\r\nContent-Type: text/plain; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.txt?=\"\r\nContent-Disposition: attachment\r\n\r\nx\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''na%C3%AFve.bin\r\n\r\nzz\r\n--b--\r\n"
	p := mustParse(t, raw)
	if p.body != "hi" || !slices.Equal(attNames(p), []string{"résumé.txt", "part3.eml", "naïve.bin"}) {
		t.Errorf("body %q, attachments %q", p.body, attNames(p))
	}
	if b := attContent(t, p, 1); string(b) != "Subject: inner\r\n\r\nbody" {
		t.Errorf("nested message %q", b)
	}
}

// mustParse parses raw and fails the test on an error; the parse is
// closed when the test ends.
func mustParse(t *testing.T, raw string) *parsedMessage {
	t.Helper()
	p, err := parseMIME(strings.NewReader(raw))
	if err != nil {
		t.Fatalf("parseMIME: %v", err)
	}
	t.Cleanup(p.close)
	return p
}

func attNames(p *parsedMessage) []string {
	var names []string
	for _, a := range p.atts {
		names = append(names, a.name)
	}
	return names
}

func attContent(t *testing.T, p *parsedMessage, i int) []byte {
	t.Helper()
	if i >= len(p.atts) {
		t.Fatalf("attachment %d of %d", i, len(p.atts))
	}
	b, err := p.content(p.atts[i])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseMIMEMissingClosingBoundary: a multipart without its closing
// boundary ends, with its last part, at the end of the message, nested
// or not.
func TestParseMIMEMissingClosingBoundary(t *testing.T) {
	raw := "Subject: cut\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n"
	p := mustParse(t, raw)
	if p.body != "hello" || len(p.atts) != 1 || string(attContent(t, p, 0)) != "%PDF-1" {
		t.Errorf("body %q, %d attachments", p.body, len(p.atts))
	}

	nested := "Content-Type: multipart/mixed; boundary=out\r\n\r\n" +
		"--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n" +
		"--in\r\nContent-Type: text/plain\r\n\r\nplain\r\n--in\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n" +
		"--out\r\nContent-Type: text/csv\r\n\r\na,b\r\n--out--\r\n"
	p = mustParse(t, nested)
	if p.body != "<p>html</p>" || !p.bodyHTML || !slices.Equal(attNames(p), []string{"part3.csv"}) {
		t.Errorf("body %q html=%v, attachments %q", p.body, p.bodyHTML, attNames(p))
	}

	// Cut right after a delimiter: no empty part is made up.
	p = mustParse(t, "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\n")
	if p.body != "text" || len(p.atts) != 0 {
		t.Errorf("body %q, attachments %q", p.body, attNames(p))
	}
}

// TestParseMIMEMboxFrom: a leading mbox "From " line is skipped.
func TestParseMIMEMboxFrom(t *testing.T) {
	p := mustParse(t, "From bob@example.org Mon Jan  2 15:04:05 2006\r\nSubject: hi\r\nFrom: Bob <bob@example.org>\r\n\r\nbody\r\n")
	if got := decoded(p.header, "Subject"); got != "hi" || p.body != "body\r\n" || p.header.Has("From ") {
		t.Errorf("subject %q, body %q", got, p.body)
	}
	if a := addresses(p.header, "From"); len(a) != 1 || a[0].Address != "bob@example.org" {
		t.Errorf("From %v", a)
	}
}

// TestParseMIMEHeaderLineWithoutColon: a line without a colon among
// header fields is dropped; one that no field follows begins the body.
func TestParseMIMEHeaderLineWithoutColon(t *testing.T) {
	for _, tc := range []struct {
		name, raw, subject, from, body string
	}{
		{"stray line", "Subject: hi\r\nthis is junk\r\nFrom: bob@example.org\r\n\r\nbody", "hi", "bob@example.org", "body"},
		{"stray first line", "junk\r\nSubject: hi\r\n\r\nbody", "hi", "", "body"},
		{"stray before the end", "Subject: hi\r\njunk\r\n\r\nbody", "hi", "", "body"},
		{"no header", "Hello Alice,\r\nsee you.\r\n", "", "", "Hello Alice,\r\nsee you.\r\n"},
		{"no empty line", "Subject: hi\r\nHello Alice\r\nsee you\r\n", "hi", "", "Hello Alice\r\nsee you\r\n"},
		{"leading space", " folded nowhere\r\nSubject: hi\r\n\r\nbody", "hi", "", "body"},
		{"space before colon", "Subject : hi\r\n\r\nbody", "hi", "", "body"},
		{"bare LF", "Subject: hi\nFrom: bob@example.org\n\nbody\n", "hi", "bob@example.org", "body\n"},
		{"no body", "Subject: hi\r\n", "hi", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, tc.raw)
			from := ""
			if a := addresses(p.header, "From"); len(a) > 0 {
				from = a[0].Address
			}
			if got := decoded(p.header, "Subject"); got != tc.subject || from != tc.from || p.body != tc.body {
				t.Errorf("subject %q, from %q, body %q; want %q, %q, %q", got, from, p.body, tc.subject, tc.from, tc.body)
			}
		})
	}
	// In a part's header too.
	p := mustParse(t, "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nbroken\r\n"+
		"Content-Disposition: inline\r\n\r\npart body\r\n--b--\r\n")
	if p.body != "part body" {
		t.Errorf("part body %q", p.body)
	}
}

// TestParseMIMECharsets: unknown charsets and raw 8-bit headers pass
// through as UTF-8, as best it can, never failing.
func TestParseMIMECharsets(t *testing.T) {
	p := mustParse(t, "Subject: caf\xe9 =?x-unknown?q?abc?=\r\nFrom: J\xfcrgen <j@example.org>\r\n"+
		"Content-Type: text/plain; charset=x-unknown\r\n\r\nna\xefve caf\xc3\xa9")
	if got := decoded(p.header, "Subject"); got != "café abc" {
		t.Errorf("subject %q", got)
	}
	if a := addresses(p.header, "From"); len(a) != 1 || a[0].Name != "Jürgen" {
		t.Errorf("From %v", a)
	}
	if p.body != "naïve café" {
		t.Errorf("body %q", p.body)
	}
	// Raw 8-bit header bytes in the charset the message declares.
	p = mustParse(t, "Subject: \xcf\xf0\xe8\xe2\xe5\xf2\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\n\xcf\xf0\xe8\xe2\xe5\xf2")
	if got := decoded(p.header, "Subject"); got != "Привет" || p.body != "Привет" {
		t.Errorf("subject %q, body %q", got, p.body)
	}
}

// TestParseMIMEBrokenEncodings: broken base64 and quoted-printable decode
// as far as they go.
func TestParseMIMEBrokenEncodings(t *testing.T) {
	for _, tc := range []struct {
		name, cte, content, want string
	}{
		{"base64 junk and glued", "base64", "SGVsbG8gd29ybGQ=\r\n!! ** !!\r\nSGk", "Hello worldHi"},
		{"base64 cut short", "base64", "SGVsbG8gd29yb", "Hello wor"},
		{"base64 one char left", "base64", "SGVsbA", "Hell"},
		{"base64 url alphabet", "BASE64", "-_-_", "\xfb\xff\xbf"},
		{"base64 empty", "base64", "", ""},
		{"qp bad escapes", "quoted-printable", "caf=E9 =ZZ =\r\nend=3d=\r\n", "caf\xe9 =ZZ end="},
		{"qp trailing space", "quoted-printable", "a  \r\nb\t\nc", "a\r\nb\nc"},
		{"qp soft break with space", "quoted-printable", "a= \r\nb=", "ab"},
		{"qp lower hex and controls", "quoted-printable", "=e9\x00\x01=0", "\xe9\x00\x01=0"},
		{"qp long line", "quoted-printable", strings.Repeat("x", 100_001) + "=41", strings.Repeat("x", 100_001) + "A"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := mustParse(t, "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: "+tc.cte+"\r\n\r\n"+tc.content)
			if got := attContent(t, p, 0); string(got) != tc.want {
				t.Errorf("decoded %q, want %q", got, tc.want)
			}
		})
	}
}

// TestParseMIMEOddBytes: NUL bytes, lines over 100,000 characters and
// empty messages are read without error.
func TestParseMIMEOddBytes(t *testing.T) {
	p := mustParse(t, "Subject: a\x00b\r\n\r\nx\x00y")
	if got := decoded(p.header, "Subject"); got != "ab" || p.body != "xy" {
		t.Errorf("subject %q, body %q", got, p.body)
	}

	long := strings.Repeat("y", 200_000)
	p = mustParse(t, "Subject: "+long+"\r\nX-Long: "+long+"\r\nFrom: bob@example.org\r\n\r\n"+long+"\r\n")
	if got := decoded(p.header, "Subject"); len(got) >= maxFieldBytes || !strings.HasPrefix(got, "yyy") {
		t.Errorf("subject of %d bytes, want it cut under %d", len(got), maxFieldBytes)
	}
	if a := addresses(p.header, "From"); len(a) != 1 || p.body != long+"\r\n" {
		t.Errorf("From %v, body of %d bytes", a, len(p.body))
	}

	// A long line before a delimiter, and a delimiter-like long line.
	p = mustParse(t, "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n"+long+"\r\n--b\r\n"+
		"Content-Type: application/octet-stream\r\n\r\n--b"+long+"\r\n--b--\r\n")
	if p.body != long || len(p.atts) != 1 || string(attContent(t, p, 0)) != "--b"+long {
		t.Errorf("body of %d bytes, %d attachments", len(p.body), len(p.atts))
	}

	for raw, body := range map[string]string{"": "", "\r\n": "", "\n\n": "\n", "From \r\n": "", "From x": ""} {
		p = mustParse(t, raw)
		if p.header.Len() != 0 || p.body != body || len(p.atts) != 0 {
			t.Errorf("%q: header %d fields, body %q, %d attachments; want none, %q, none", raw, p.header.Len(), p.body, len(p.atts), body)
		}
	}

	// Bounded: a header block of many megabytes keeps maxHeaderBytes.
	var b strings.Builder
	for i := 0; b.Len() < 4*maxHeaderBytes; i++ {
		b.WriteString("X-Filler: " + strings.Repeat("z", 1000) + "\r\n")
	}
	p = mustParse(t, b.String()+"\r\nbody")
	if n := len(p.header.Values("X-Filler")) * 1012; n > maxHeaderBytes || p.body != "body" {
		t.Errorf("%d bytes of header kept, body %q", n, p.body)
	}
}

// TestParseMIMEUnbuildable: what the JSON create cannot take is a
// rebuildError, which Put answers with a degraded item.
func TestParseMIMEUnbuildable(t *testing.T) {
	deep := ""
	for i := range maxDepth + 2 {
		deep += "Content-Type: multipart/mixed; boundary=b" + strings.Repeat("x", i) + "\r\n\r\n--b" + strings.Repeat("x", i) + "\r\n"
	}
	for name, raw := range map[string]string{
		"too deep":       deep + "\r\ntext\r\n",
		"no boundary":    "Content-Type: multipart/mixed; boundary=nowhere\r\n\r\njust text\r\n",
		"body too large": "Subject: big\r\n\r\n" + strings.Repeat("x", maxBodyText+1),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseMIME(strings.NewReader(raw))
			var re *rebuildError
			if !errors.As(err, &re) {
				t.Errorf("parseMIME: %v, want a rebuildError", err)
			}
		})
	}
}

// TestParseMIMEReadError: a failure of the source is returned as such,
// not taken for bad MIME.
func TestParseMIMEReadError(t *testing.T) {
	boom := errors.New("connection lost")
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\ntext\r\n--b\r\nContent-Type: image/png\r\n\r\n" +
		strings.Repeat("p", 100<<10)
	for _, cut := range []int{10, 60, len(raw) - 10} {
		_, err := parseMIME(io.MultiReader(strings.NewReader(raw[:cut]), iotest.ErrReader(boom)))
		var re *rebuildError
		if !errors.Is(err, boom) || errors.As(err, &re) {
			t.Errorf("cut at %d: %v, want the read error", cut, err)
		}
	}
}

func TestBestUTF8(t *testing.T) {
	for _, tc := range []struct{ in, charset, want string }{
		{"plain", "", "plain"},
		{"caf\xc3\xa9", "iso-8859-1", "café"}, // valid UTF-8 stays
		{"caf\xe9", "", "café"},
		{"caf\xe9 \xe2\x82\xac", "", "café €"}, // mixed: each invalid byte alone
		{"\xe4", "koi8-r", "Д"},
		{"\x80\x81", "x-nonsense", "€\uFFFD"}, // 0x81 is not Windows-1252
	} {
		if got := bestUTF8([]byte(tc.in), tc.charset); got != tc.want {
			t.Errorf("bestUTF8(%q, %q) = %q, want %q", tc.in, tc.charset, got, tc.want)
		}
	}
}

// TestBase64ReaderChunks decodes through reads of every size, so that a
// group split between reads decodes like any other.
func TestBase64ReaderChunks(t *testing.T) {
	want := bytes.Repeat([]byte("The quick brown fox. "), 500)
	var enc strings.Builder
	for i, c := range []byte(base64.StdEncoding.EncodeToString(want)) {
		enc.WriteByte(c)
		if i%76 == 75 {
			enc.WriteString("\r\n")
		}
	}
	got, err := io.ReadAll(&base64Reader{r: iotest.OneByteReader(strings.NewReader(enc.String()))})
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("decoded %d bytes (%v), want %d", len(got), err, len(want))
	}
	if err := iotest.TestReader(&base64Reader{r: strings.NewReader(enc.String())}, want); err != nil {
		t.Error(err)
	}
	if err := iotest.TestReader(newQPReader(strings.NewReader("a=3Db=\r\nc\r\n")), []byte("a=bc\r\n")); err != nil {
		t.Error(err)
	}
}

// fuzzSeeds are the malformed messages of the tests above, and a few
// well-formed ones.
var fuzzSeeds = []string{
	"",
	"\r\n",
	"Subject: hi\r\n\r\nbody\r\n",
	"From bob@example.org Mon Jan  2 15:04:05 2006\r\nSubject: hi\r\n\r\nbody",
	"Subject: hi\r\nthis is junk\r\nFrom: bob@example.org\r\n\r\nbody",
	"Hello Alice,\r\nsee you.\r\n",
	" folded nowhere\r\nSubject: hi\r\n\r\nbody",
	"Subject: caf\xe9 =?x-unknown?q?abc?=\r\nFrom: J\xfcrgen <j@example.org>\r\nContent-Type: text/plain; charset=x-unknown\r\n\r\nna\xefve",
	"Subject: \xcf\xf0\xe8\r\nContent-Type: text/plain; charset=windows-1251\r\n\r\n\xcf\xf0\xe8",
	"Subject: a\x00b\r\n\r\nx\x00y",
	"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQ=\r\n!!\r\nSGk",
	"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\ncaf=E9 =ZZ =\r\nend=3d=",
	"Subject: cut\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\npreamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\r\n",
	"Content-Type: multipart/mixed; boundary=out\r\n\r\n--out\r\nContent-Type: multipart/alternative; boundary=in\r\n\r\n" +
		"--in\r\nContent-Type: text/plain\r\n\r\nplain\r\n--in\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n" +
		"--out\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n--out--\r\nepilogue",
	"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\nbroken\r\n\r\npart\r\n--b\r\n",
	"Content-Type: multipart/mixed; boundary=nowhere\r\n\r\njust text\r\n",
	"Content-Type: multipart/mixed; boundary=\"a b\"; charset=\"\r\n\r\n--a b\r\n\r\nx\r\n--a b--",
	"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n\r\nloop\r\n--a--\r\n",
	"Subject: " + strings.Repeat("y", 5000) + "\r\n\r\n" + strings.Repeat("z", 5000),
	string(deepMIME("<deep@example.org>", "deep", deepDate)),
	string(sampleMIME("<s@example.org>", "sample")),
}

// FuzzParseMIME checks the lenient parse on any input: it never panics,
// fails only with a rebuildError (what Put degrades), keeps its text
// UTF-8 and within bounds, and makes a create that encodes as JSON; and
// the degraded item of the same input, kept in memory or in a file,
// attaches exactly its bytes.
func FuzzParseMIME(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	m := &migrate.Message{ID: migrate.SourceID{Folder: "INBOX", UIDValidity: 1, UID: 1},
		MessageInfo: migrate.MessageInfo{UID: 1, Flags: []migrate.Flag{migrate.FlagSeen}, InternalDate: testInternalDate}}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := parseMIME(bytes.NewReader(data))
		var re *rebuildError
		switch {
		case err == nil:
			defer p.close()
			if len(p.body) > maxBodyText || !utf8.ValidString(p.body) {
				t.Errorf("body of %d bytes, valid UTF-8 %v", len(p.body), utf8.ValidString(p.body))
			}
			for _, a := range p.atts {
				if b, err := p.content(a); err != nil || int64(len(b)) != a.size {
					t.Errorf("attachment %q: %d of %d bytes, %v", a.name, len(b), a.size, err)
				}
			}
			if _, err := json.Marshal(messageJSON(p, m)); err != nil {
				t.Errorf("create: %v", err)
			}
		case !errors.As(err, &re):
			t.Fatalf("parseMIME: %v, want nil or a rebuildError", err)
		}

		raw := &rawCopy{memLimit: 1024}
		defer raw.close()
		if _, err := io.Copy(raw, iotest.HalfReader(bytes.NewReader(data))); err != nil {
			t.Fatal(err)
		}
		create, dp := degradedMessage(raw, m, "fuzz", false)
		if len(dp.atts) != 1 {
			t.Fatalf("%d attachments", len(dp.atts))
		}
		got, err := dp.content(dp.atts[0])
		if err != nil || !bytes.Equal(got, data) || dp.atts[0].size != int64(len(data)) {
			t.Fatalf("the original attached is %d bytes (%v), want the %d of the input unchanged", len(got), err, len(data))
		}
		enc := fileAttachment(dp.atts[0], got)["contentBytes"].(string)
		if dec, err := base64.StdEncoding.DecodeString(enc); err != nil || !bytes.Equal(dec, data) {
			t.Fatalf("contentBytes does not decode to the input: %v", err)
		}
		if _, err := json.Marshal(create); err != nil {
			t.Fatalf("degraded create: %v", err)
		}
		if subj, _ := create["subject"].(string); !utf8.ValidString(subj) || utf8.RuneCountInString(subj) > maxDegradedSubject {
			t.Errorf("degraded subject %q", subj)
		}
	})
}
