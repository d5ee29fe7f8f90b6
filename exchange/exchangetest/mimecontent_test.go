package exchangetest

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mime joins lines with CRLF.
func mimeLines(lines ...string) string { return strings.Join(lines, "\r\n") }

// attSummary is what a test compares of an attachment.
type attSummary struct {
	name, contentType, contentID string
	inline, item                 bool
	content                      string
}

func summarize(atts []*attachment) []attSummary {
	var out []attSummary
	for _, a := range atts {
		out = append(out, attSummary{a.name, a.contentType, a.contentID, a.isInline, a.item, string(a.content)})
	}
	return out
}

func TestSplitMultipart(t *testing.T) {
	body := "preamble\r\n--b\r\nA: 1\r\n\r\none\r\n--b  \r\n\r\ntwo\r\n\r\n--b2\r\nnot a delimiter\r\n--b--\r\nepilogue\r\n--b\r\nafter the end"
	parts := splitMultipart([]byte(body), "b")
	require.Len(t, parts, 2)
	assert.Equal(t, "A: 1\r\n\r\none", string(parts[0]))
	assert.Equal(t, "\r\ntwo\r\n\r\n--b2\r\nnot a delimiter", string(parts[1]), "only the line break before the delimiter belongs to it")

	// No closing delimiter: the last part runs to the end; LF line ends.
	parts = splitMultipart([]byte("--b\nx\n--b\ny\n"), "b")
	require.Len(t, parts, 2)
	assert.Equal(t, "x", string(parts[0]))
	assert.Equal(t, "y\n", string(parts[1]))

	assert.Empty(t, splitMultipart([]byte("no delimiter at all"), "b"))
	assert.Empty(t, splitMultipart([]byte("--b\r\n"), "b"), "a delimiter with nothing after it is no part")
}

func TestDecodeTransferEncodings(t *testing.T) {
	e := &entity{header: []internetHeader{{"Content-Transfer-Encoding", "Base64"}}, body: []byte("aGVs\r\nbG8*\r\n")}
	assert.Equal(t, "hello", string(e.decoded()), "line breaks and stray characters skipped, padding optional")
	e.body = []byte("aGVsbG8hZ")
	assert.Equal(t, "hello!", string(e.decoded()), "a lone last character carries no byte")
	e = &entity{header: []internetHeader{{"Content-Transfer-Encoding", "quoted-printable"}}, body: []byte("caf=C3=A9 =\r\nau lait")}
	assert.Equal(t, "café au lait", string(e.decoded()))
	e = &entity{header: []internetHeader{{"Content-Transfer-Encoding", "8bit"}}, body: []byte("as =C3 is")}
	assert.Equal(t, "as =C3 is", string(e.decoded()))
}

func TestToUTF8(t *testing.T) {
	assert.Equal(t, "café", toUTF8([]byte("caf\xe9"), "ISO-8859-1"))
	assert.Equal(t, "“café” €", toUTF8([]byte("\x93caf\xe9\x94 \x80"), "\"windows-1252\""))
	assert.Equal(t, "é\uFFFD", toUTF8([]byte("é\xff"), "utf-8"))
	assert.Equal(t, "\uFFFD", toUTF8([]byte("\xe9"), "koi8-r"), "an unknown charset is read as UTF-8")
}

// TestMIMEBody: the body MS-OXCMAIL 2.2.3.3.2 chooses, and what becomes
// an attachment beside it.
func TestMIMEBody(t *testing.T) {
	const pdf = "Content-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg=="
	for _, tc := range []struct {
		name, raw  string
		body       map[string]any
		atts       []attSummary
		hasHeaders bool
	}{
		{
			name: "no content type: text",
			raw:  "Subject: s\r\n\r\nHello\r\n",
			body: map[string]any{"contentType": "text", "content": "Hello\r\n"},
		},
		{
			name: "html, quoted-printable latin-1",
			raw:  mimeLines("Content-Type: text/html; charset=iso-8859-1", "Content-Transfer-Encoding: quoted-printable", "", "<p>caf=E9</p>"),
			body: map[string]any{"contentType": "html", "content": "<p>café</p>"},
		},
		{
			name: "alternative: html preferred, the text rendition dropped",
			raw: mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m",
				"Content-Type: multipart/alternative; boundary=a", "", "--a", "Content-Type: text/plain", "", "plain", "--a",
				"Content-Type: text/html", "", "<b>html</b>", "--a--", "--m", pdf, "--m--", ""),
			body: map[string]any{"contentType": "html", "content": "<b>html</b>"},
			atts: []attSummary{{name: "a.pdf", contentType: "application/pdf", content: "%PDF"}},
		},
		{
			name: "alternative with only text",
			raw: mimeLines("Content-Type: multipart/alternative; boundary=a", "", "--a", "Content-Type: text/plain; charset=utf-8",
				"Content-Transfer-Encoding: base64", "", base64.StdEncoding.EncodeToString([]byte("héllo")), "--a--"),
			body: map[string]any{"contentType": "text", "content": "héllo"},
		},
		{
			name: "mixed: the first text part is the body, a second one an attachment",
			raw: mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m", "", "first", "--m",
				"Content-Type: text/plain", "", "footer", "--m", "Content-Type: text/html", "", "<i>x</i>", "--m",
				"Content-Type: application/octet-stream", "", "bytes", "--m--"),
			body: map[string]any{"contentType": "text", "content": "first"},
			atts: []attSummary{
				{name: "ATT00001.txt", contentType: "text/plain", content: "footer"},
				{name: "ATT00002.htm", contentType: "text/html", content: "<i>x</i>"},
				{name: "ATT00003.bin", contentType: "application/octet-stream", content: "bytes"},
			},
		},
		{
			name: "a text part marked attachment is never the body",
			raw: mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m",
				"Content-Type: text/plain", "Content-Disposition: attachment; filename=notes.txt", "", "notes", "--m",
				"Content-Type: text/html", "", "<p>body</p>", "--m--"),
			body: map[string]any{"contentType": "html", "content": "<p>body</p>"},
			atts: []attSummary{{name: "notes.txt", contentType: "text/plain", content: "notes"}},
		},
		{
			name: "a whole message that is an attachment: no body",
			raw:  mimeLines("Content-Type: text/plain; name=\"r.txt\"", "Content-Disposition: attachment", "", "report"),
			body: map[string]any{"contentType": "text", "content": ""},
			atts: []attSummary{{name: "r.txt", contentType: "text/plain", content: "report"}},
		},
		{
			name: "RFC 2231 and RFC 2047 names; Content-Description last",
			raw: mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m", "", "b", "--m",
				"Content-Type: application/octet-stream", "Content-Disposition: attachment; filename*=UTF-8''r%C3%A9sum%C3%A9.doc", "", "1", "--m",
				"Content-Type: application/octet-stream; name=\"=?utf-8?q?na=C3=AFve.bin?=\"", "", "2", "--m",
				"Content-Type: image/png", "Content-Description: A picture", "", "3", "--m--"),
			body: map[string]any{"contentType": "text", "content": "b"},
			atts: []attSummary{
				{name: "résumé.doc", contentType: "application/octet-stream", content: "1"},
				{name: "naïve.bin", contentType: "application/octet-stream", content: "2"},
				{name: "A picture", contentType: "image/png", content: "3"},
			},
		},
	} {
		c := readMIMEContent([]byte(tc.raw))
		assert.Equal(t, tc.body, c.body, tc.name)
		assert.Equal(t, tc.atts, summarize(c.atts), tc.name)
	}
}

// TestMIMEInline: MS-OXCMAIL 2.2.3.4.1.4.1's inline attachments.
func TestMIMEInline(t *testing.T) {
	img := func(cid, ct string) string {
		return mimeLines("Content-Type: "+ct+"; name=\"logo.png\"", "Content-ID: <"+cid+">", "Content-Transfer-Encoding: base64", "", "iVBORw==")
	}
	raw := mimeLines("Content-Type: multipart/alternative; boundary=a", "", "--a", "Content-Type: text/plain", "", "plain", "--a",
		"Content-Type: multipart/related; boundary=r", "", "--r", "Content-Type: text/html", "",
		`<p>Hi</p><img src="CID:Logo@x"><img src="cid:chart@x">`, "--r",
		img("logo@x", "image/png"), "--r", img("unused@x", "image/png"), "--r", img("chart@x", "application/pdf"), "--r--", "--a--")
	c := readMIMEContent([]byte(raw))
	assert.Equal(t, "html", c.body["contentType"], "the HTML of a related beside a plain alternative")
	assert.Equal(t, []attSummary{
		{name: "logo.png", contentType: "image/png", contentID: "logo@x", inline: true, content: "\x89PNG"},
		{name: "logo.png", contentType: "image/png", contentID: "unused@x", content: "\x89PNG"},
		{name: "logo.png", contentType: "application/pdf", contentID: "chart@x", content: "\x89PNG"},
	}, summarize(c.atts), "inline: referenced (case aside), an image; unreferenced or not an image: not inline")

	// A related that does not begin with HTML is no HTML alternative.
	raw = mimeLines("Content-Type: multipart/alternative; boundary=a", "", "--a", "Content-Type: text/plain", "", "plain", "--a",
		"Content-Type: multipart/related; boundary=r", "", "--r", "Content-Type: text/plain", "", "inner", "--r",
		"Content-Type: image/png", "", "PNG", "--r--", "--a--")
	c = readMIMEContent([]byte(raw))
	assert.Equal(t, map[string]any{"contentType": "text", "content": "plain"}, c.body)
	assert.Len(t, c.atts, 1, "the image; the inner text is a rendition")

	// Outside multipart/related an image with a Content-ID is not inline.
	raw = mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m", "Content-Type: text/html", "", `<img src="cid:logo@x">`,
		"--m", img("logo@x", "image/png"), "--m--")
	c = readMIMEContent([]byte(raw))
	require.Len(t, c.atts, 1)
	assert.False(t, c.atts[0].isInline)

	// A Content-Location referenced from the HTML is inline too.
	raw = mimeLines("Content-Type: multipart/related; boundary=r", "", "--r", "Content-Type: text/html", "", `<img src="http://x/logo.gif">`,
		"--r", "Content-Type: image/gif", "Content-Location: http://x/logo.gif", "", "GIF", "--r--")
	c = readMIMEContent([]byte(raw))
	require.Len(t, c.atts, 1)
	assert.True(t, c.atts[0].isInline)
	assert.Equal(t, "ATT00001.bin", c.atts[0].name)
}

// TestMIMEAttachedMessage: message/rfc822 parts are item attachments
// named as MS-OXCMAIL 2.2.3.4.3 says; parts of a multipart/digest are
// messages by default.
func TestMIMEAttachedMessage(t *testing.T) {
	inner := mimeLines("Subject: =?utf-8?q?Fwd=3A_r=C3=A9union?=", "Content-Type: multipart/mixed; boundary=i", "", "--i", "", "inner body",
		"--i", "Content-Type: application/pdf; name=inner.pdf", "", "PDF", "--i--")
	raw := mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m", "", "outer", "--m",
		"Content-Type: message/rfc822", "", inner, "--m",
		"Content-Type: message/rfc822; name=\"named.eml\"", "Content-Disposition: attachment; filename=\"other.eml\"", "", "Subject: x\r\n\r\ny", "--m",
		"Content-Type: multipart/digest; boundary=d", "", "--d", "", "Subject: digest one\r\n\r\n1", "--d--", "--m--")
	c := readMIMEContent([]byte(raw))
	assert.Equal(t, map[string]any{"contentType": "text", "content": "outer"}, c.body, "the attached message's body is not the body")
	assert.Equal(t, []attSummary{
		{name: "Fwd: réunion", contentType: "message/rfc822", item: true, content: inner},
		{name: "named.eml", contentType: "message/rfc822", item: true, content: "Subject: x\r\n\r\ny"},
		{name: "digest one", contentType: "message/rfc822", item: true, content: "Subject: digest one\r\n\r\n1"},
	}, summarize(c.atts))

	// Without any name: ATT and a number, no extension.
	c = readMIMEContent([]byte(mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m", "", "b", "--m",
		"Content-Type: message/rfc822", "", "\r\nno header", "--m--")))
	require.Len(t, c.atts, 1)
	assert.Equal(t, "ATT00001", c.atts[0].name)
}

// TestMIMESMIME: MS-OXOSMIME 2.1.3's signed and encrypted messages.
func TestMIMESMIME(t *testing.T) {
	ct := "multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=s"
	body := mimeLines("--s", "Content-Type: multipart/mixed; boundary=m", "", "--m", "Content-Type: text/html", "", "<p>signed</p>",
		"--m", "Content-Type: application/pdf; name=a.pdf", "", "PDF", "--m--", "--s",
		"Content-Type: application/pkcs7-signature; name=smime.p7s", "Content-Transfer-Encoding: base64", "", "MIIB", "--s--", "")
	raw := "From: a@example.com\r\nContent-Type: " + ct + "\r\nSubject: s\r\n\r\n" + body
	c := readMIMEContent([]byte(raw))
	assert.Equal(t, map[string]any{"contentType": "html", "content": "<p>signed</p>"}, c.body)
	assert.Equal(t, []attSummary{{name: "smime.p7m", contentType: "multipart/signed", content: "Content-Type: " + ct + "\r\n\r\n" + body}},
		summarize(c.atts), "one attachment: the signed entity with its Content-Type alone")
	assert.Len(t, c.headers, 3)

	raw = mimeLines("Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m",
		"Content-Disposition: attachment; filename=smime.p7m", "Content-Transfer-Encoding: base64", "", "MIIB")
	c = readMIMEContent([]byte(raw))
	assert.Equal(t, map[string]any{"contentType": "text", "content": ""}, c.body, "encrypted: no body")
	assert.Equal(t, []attSummary{{name: "smime.p7m", contentType: "application/pkcs7-mime", content: "0\x82\x01"}}, summarize(c.atts))
}

func TestMIMEHeadersAndOddities(t *testing.T) {
	raw := "Received: from a\r\n by b\r\nX-Custom:  v \r\nSubject: =?utf-8?q?x?=\r\n\r\nbody"
	c := readMIMEContent([]byte(raw))
	assert.Equal(t, []internetHeader{{"Received", "from a by b"}, {"X-Custom", "v"}, {"Subject", "=?utf-8?q?x?="}}, c.headers,
		"in order, unfolded, values as written")
	assert.Equal(t, []internetHeader{}, readMIMEContent([]byte("\r\nno header")).headers)

	// A multipart without a boundary, or an unparsable Content-Type.
	c = readMIMEContent([]byte("Content-Type: multipart/mixed\r\n\r\nlost"))
	assert.Equal(t, "", c.body["content"])
	assert.Empty(t, c.atts)
	c = readMIMEContent([]byte("Content-Type: ;;\r\n\r\ntext"))
	assert.Equal(t, map[string]any{"contentType": "text", "content": "text"}, c.body)

	// Nesting beyond maxMIMEDepth is not read (and does not recurse
	// without end).
	nested := func(n int, text string) []byte {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
		}
		return []byte(b.String() + "\r\n" + text)
	}
	assert.Equal(t, "shallow", readMIMEContent(nested(maxMIMEDepth, "shallow")).body["content"])
	assert.Equal(t, "", readMIMEContent(nested(maxMIMEDepth+1, "deep")).body["content"])
}

func TestBodyPreview(t *testing.T) {
	for _, tc := range []struct{ name, ct, content, want string }{
		{"text collapsed", "text", "  Hi\r\n\r\n\tthere  \u00a0you ", "Hi there you"},
		{"html", "html", "<html><head><base href=x>stray<title>T</title><style>p{}</style></head><body><p>Caf&eacute;</p><p>au<b>lait</b></p>" +
			"<!-- note --><script>x()</script>1 &lt; 2<br>end</body></html>", "Café aulait 1 < 2 end"},
		{"html a lone <", "HTML", "a < b", "a < b"},
		{"unclosed comment", "html", "a<!-- b", "a"},
	} {
		assert.Equal(t, tc.want, bodyPreview(map[string]any{"contentType": tc.ct, "content": tc.content}), tc.name)
	}
	long := strings.Repeat("é", 300)
	assert.Equal(t, strings.Repeat("é", 255), bodyPreview(map[string]any{"contentType": "text", "content": long}), "255 characters")
	assert.Equal(t, "", bodyPreview(nil))
}

// mixedMIME is a message with an HTML body, an inline image, a PDF and an
// attached message.
var mixedMIME = mimeLines(
	"From: Bob <bob@example.com>",
	"To: alice@contoso.com",
	"Subject: Report",
	"Message-ID: <mixed@example.com>",
	"X-Mailer: test",
	"  1.0",
	"MIME-Version: 1.0",
	"Content-Type: multipart/mixed; boundary=m",
	"",
	"--m",
	"Content-Type: multipart/related; boundary=r",
	"",
	"--r",
	"Content-Type: text/html; charset=utf-8",
	"",
	`<p>See the <b>chart</b>:</p><img src="cid:chart@x">`,
	"--r",
	"Content-Type: image/png; name=chart.png",
	"Content-ID: <chart@x>",
	"Content-Transfer-Encoding: base64",
	"",
	"iVBORw==",
	"--r--",
	"--m",
	"Content-Type: application/pdf; name=report.pdf",
	"Content-Disposition: attachment; filename=report.pdf",
	"Content-Transfer-Encoding: base64",
	"",
	"JVBERg==",
	"--m",
	"Content-Type: message/rfc822",
	"",
	"Subject: Earlier",
	"",
	"earlier text",
	"--m--",
	"")

// TestImportMIMEContent: an import shows the body, bodyPreview, headers
// and attachments of its MIME, and $value stays the exact MIME.
func TestImportMIMEContent(t *testing.T) {
	s := newTestServer(t, nil)
	r := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(mixedMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	id := r.json["id"].(string)
	assert.Equal(t, map[string]any{"contentType": "html", "content": `<p>See the <b>chart</b>:</p><img src="cid:chart@x">`}, r.json["body"])
	assert.Equal(t, "See the chart:", r.json["bodyPreview"])
	assert.Equal(t, true, r.json["hasAttachments"])

	base := "/v1.0/users/" + alice + "/messages/" + id
	h := do(t, s, "GET", base+"?$select=internetMessageHeaders,bodyPreview", nil, "")
	require.Equal(t, 200, h.status)
	assert.Equal(t, "See the chart:", h.json["bodyPreview"])
	hs := h.json["internetMessageHeaders"].([]any)
	require.Len(t, hs, 7)
	assert.Equal(t, map[string]any{"name": "From", "value": "Bob <bob@example.com>"}, hs[0])
	assert.Equal(t, map[string]any{"name": "X-Mailer", "value": "test  1.0"}, hs[4])
	assert.Equal(t, map[string]any{"name": "Content-Type", "value": "multipart/mixed; boundary=m"}, hs[6])

	list := do(t, s, "GET", base+"/attachments", nil, "")
	require.Equal(t, 200, list.status, string(list.raw))
	atts := values(list)
	require.Len(t, atts, 3)
	assert.Equal(t, "#microsoft.graph.fileAttachment", atts[0]["@odata.type"])
	assert.Equal(t, "chart.png", atts[0]["name"])
	assert.Equal(t, true, atts[0]["isInline"])
	assert.Equal(t, "chart@x", atts[0]["contentId"])
	assert.Equal(t, "report.pdf", atts[1]["name"])
	assert.Equal(t, "application/pdf", atts[1]["contentType"])
	assert.EqualValues(t, 4, atts[1]["size"])
	assert.Equal(t, false, atts[1]["isInline"])
	assert.Equal(t, "#microsoft.graph.itemAttachment", atts[2]["@odata.type"])
	assert.Equal(t, "Earlier", atts[2]["name"])
	assert.NotContains(t, atts[2], "contentBytes")

	one := do(t, s, "GET", base+"/attachments/"+atts[1]["id"].(string), nil, "")
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("%PDF")), one.json["contentBytes"])
	raw := do(t, s, "GET", base+"/attachments/"+atts[1]["id"].(string)+"/$value", nil, "")
	assert.Equal(t, "%PDF", string(raw.raw))

	item := do(t, s, "GET", base+"/attachments/"+atts[2]["id"].(string)+"?$expand=microsoft.graph.itemattachment/item", nil, "")
	require.Equal(t, 200, item.status)
	assert.Equal(t, "Earlier", item.json["item"].(map[string]any)["subject"])
	plain := do(t, s, "GET", base+"/attachments/"+atts[2]["id"].(string), nil, "")
	assert.NotContains(t, plain.json, "item", "the item only with $expand")
	mimeOfItem := do(t, s, "GET", base+"/attachments/"+atts[2]["id"].(string)+"/$value", nil, "")
	assert.Equal(t, "Subject: Earlier\r\n\r\nearlier text", string(mimeOfItem.raw))

	m, _ := s.Message(alice, id)
	require.Len(t, m.Attachments, 3)
	assert.True(t, m.Attachments[2].IsItem)
	assert.Equal(t, []byte(mixedMIME), m.MIME)
	v := do(t, s, "GET", base+"/$value", nil, "")
	assert.Equal(t, mixedMIME, string(v.raw), "$value is the MIME, byte for byte")

	// With the PDF and the message deleted, only the inline image is
	// left: hasAttachments is false, and $value is still the MIME.
	for _, a := range atts[1:] {
		require.Equal(t, 204, do(t, s, "DELETE", base+"/attachments/"+a["id"].(string), nil, "").status)
	}
	assert.Equal(t, false, do(t, s, "GET", base, nil, "").json["hasAttachments"], "only an inline attachment left")
	assert.Equal(t, mixedMIME, string(do(t, s, "GET", base+"/$value", nil, "").raw))
}

// TestMIMEDraftContent: the MIME create of POST .../messages reads the
// content as importMime does.
func TestMIMEDraftContent(t *testing.T) {
	s := newTestServer(t, nil)
	r := do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/drafts/messages", b64(sampleMIME), "text/plain")
	require.Equal(t, 201, r.status, string(r.raw))
	assert.Equal(t, true, r.json["isDraft"])
	assert.Equal(t, map[string]any{"contentType": "text", "content": "Hi Alice,\r\nsee you.\r\n"}, r.json["body"])
	assert.Equal(t, "Hi Alice, see you.", r.json["bodyPreview"])
	assert.Equal(t, false, r.json["hasAttachments"])
	list := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+r.json["id"].(string)+"/attachments", nil, "")
	assert.Empty(t, values(list))

	// Only an inline image: hasAttachments false, the image listed.
	inlineOnly := mimeLines("Subject: logo", "Content-Type: multipart/related; boundary=r", "", "--r", "Content-Type: text/html", "",
		`<img src="cid:l@x">`, "--r", "Content-Type: image/gif", "Content-ID: <l@x>", "", "GIF89a", "--r--")
	r = do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(inlineOnly), "text/plain")
	require.Equal(t, 201, r.status)
	assert.Equal(t, false, r.json["hasAttachments"])
	list = do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+r.json["id"].(string)+"/attachments", nil, "")
	require.Len(t, values(list), 1)
	assert.Equal(t, true, values(list)[0]["isInline"])
	q := url.Values{"$filter": {"hasAttachments eq false"}, "$select": {"subject"}}
	got := values(do(t, s, "GET", "/v1.0/users/"+alice+"/messages?"+q.Encode(), nil, ""))
	require.Len(t, got, 2)
	assert.Equal(t, "logo", got[1]["subject"])
}

// TestMessageFlagsProperty: PidTagMessageFlags read through $expand and
// $filter agrees with isRead, isDraft and hasAttachments.
func TestMessageFlagsProperty(t *testing.T) {
	s := newTestServer(t, nil)
	flagsOf := func(id, spelling string) any {
		t.Helper()
		q := url.Values{"$expand": {"singleValueExtendedProperties($filter=id eq '" + spelling + "')"}}
		r := do(t, s, "GET", "/v1.0/users/"+alice+"/messages/"+id+"?"+q.Encode(), nil, "")
		require.Equal(t, 200, r.status, string(r.raw))
		props := r.json["singleValueExtendedProperties"].([]any)
		require.Len(t, props, 1)
		return props[0].(map[string]any)["value"]
	}
	imported := do(t, s, "POST", "/beta/users/"+alice+"/mailFolders/inbox/importMime", b64(mixedMIME), "text/plain").json["id"].(string)
	assert.Equal(t, "16", flagsOf(imported, "Integer 0x0E07"), "delivered, unread, with attachments: mfHasAttach")
	require.Equal(t, 200, doJSON(t, s, "PATCH", "/v1.0/users/"+alice+"/messages/"+imported, map[string]any{"isRead": true}).status)
	assert.Equal(t, "17", flagsOf(imported, "integer 0xe07"), "read: mfRead too")

	draft := do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/drafts/messages", b64(sampleMIME), "text/plain").json["id"].(string)
	assert.Equal(t, "9", flagsOf(draft, "Integer 0x0E07"), "a draft: mfUnsent, and read")

	delivered := newDraft(t, s, map[string]any{"subject": "j", "isRead": false, "singleValueExtendedProperties": []map[string]string{
		{"id": "Integer 0x0E07", "value": "1"}}})
	assert.Equal(t, "0", flagsOf(delivered, "Integer 0x0E07"), "isRead false wins over the mfRead given")

	q := url.Values{"$filter": {"singleValueExtendedProperties/Any(ep: ep/id eq 'Integer 0x0E07' and ep/value eq '9')"}, "$select": {"id"}}
	got := values(do(t, s, "GET", "/v1.0/users/"+alice+"/messages?"+q.Encode(), nil, ""))
	require.Len(t, got, 1)
	assert.Equal(t, draft, got[0]["id"])
}

// TestMIMEMessageSize: imported MIME counts once towards the maximum
// message size (its body and attachments), not twice.
func TestMIMEMessageSize(t *testing.T) {
	s := newTestServer(t, &Options{MaxMessageBytes: 1000})
	payload := strings.Repeat("x", 400)
	raw := mimeLines("Content-Type: multipart/mixed; boundary=m", "", "--m", "", "body", "--m",
		"Content-Type: application/octet-stream; name=a.bin", "", payload, "--m--")
	r := do(t, s, "POST", "/v1.0/users/"+alice+"/mailFolders/drafts/messages", b64(raw), "text/plain")
	require.Equal(t, 201, r.status)
	add := doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+r.json["id"].(string)+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "b.bin",
		"contentBytes": base64.StdEncoding.EncodeToString([]byte(strings.Repeat("y", 500))),
	})
	assert.Equal(t, 201, add.status, "4 + 400 + 500 bytes fit in 1000: %s", add.raw)
	add = doJSON(t, s, "POST", "/v1.0/users/"+alice+"/messages/"+r.json["id"].(string)+"/attachments", map[string]any{
		"@odata.type": "#microsoft.graph.fileAttachment", "name": "c.bin",
		"contentBytes": base64.StdEncoding.EncodeToString([]byte(strings.Repeat("z", 100))),
	})
	assert.Equal(t, 400, add.status, "1004 bytes do not")
}
