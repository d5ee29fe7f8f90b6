package exchangetest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"html"
	"io"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"
	"unicode/utf8"
)

// This file reads the content of imported MIME (importMime, and the MIME
// create of POST .../messages) as Exchange's MIME reader does: the body,
// the internet message headers and the attachments the message shows
// through Graph. The MIME itself is kept byte for byte (GET .../$value).
//
// The reading follows [MS-OXCMAIL] ("RFC 2822 and MIME to Email Object
// Conversion Algorithm", section 2.2.3) and, for signed and encrypted
// messages, [MS-OXOSMIME] section 2.1.3. Where these leave a choice the
// emulator's own rule is named as such.

// mimeContent is what Graph shows of a message's MIME beyond the fields
// applyMIMEHeader reads.
type mimeContent struct {
	// headers are the fields of the message's header, in order: the
	// internetMessageHeaders of a message that came in as MIME
	// (https://learn.microsoft.com/graph/api/resources/message:
	// "A collection of message headers defined by RFC5322").
	headers []internetHeader
	// body is the message body, {"contentType": "html"|"text",
	// "content": …}.
	body map[string]any
	// atts are the attachments, in the order of the MIME parts, without
	// ids.
	atts []*attachment
}

// applyMIMEContent gives m, a message created from raw, the body,
// internetMessageHeaders and attachments that raw holds (readMIMEContent).
// Each attachment gets an id and m's creation time as its
// lastModifiedDateTime. m.mime stays raw.
func (s *Server) applyMIMEContent(m *message, raw []byte) {
	c := readMIMEContent(raw)
	m.headers, m.body = c.headers, c.body
	for _, a := range c.atts {
		a.id, a.mod = s.newID("AAMkAGAt"), m.created
		m.attachments = append(m.attachments, a)
	}
}

// maxMIMEDepth bounds how deep multiparts are read; what lies deeper is
// read as one opaque part (the emulator's own limit, against hostile
// nesting).
const maxMIMEDepth = 32

// entity is one MIME entity (RFC 2045): the message, or a part of a
// multipart.
type entity struct {
	header    []internetHeader  // in order, see readHeader
	mediaType string            // lower case, without parameters
	params    map[string]string // of Content-Type
	disp      string            // Content-Disposition, lower case; "" when absent
	dparams   map[string]string // of Content-Disposition
	body      []byte            // as in the message: transfer encoding not undone
	parent    *entity
	children  []*entity // of a multipart
}

func (e *entity) get(name string) string {
	for _, f := range e.header {
		if strings.EqualFold(f.Name, name) {
			return f.Value
		}
	}
	return ""
}

// parseEntity reads the entity raw. Its media type is the Content-Type's
// (RFC 2045 section 5); without one, or with one that does not parse, it
// is defType: text/plain, or message/rfc822 for the parts of a
// multipart/digest (RFC 2046 section 5.1.5). A multipart is split at its
// boundary (see splitMultipart); one without a boundary is read as a
// single part of its type.
func parseEntity(raw []byte, defType string, parent *entity, depth int) *entity {
	fields, body := readHeader(raw)
	e := &entity{header: fields, body: body, parent: parent, mediaType: defType, params: map[string]string{}}
	if ct := e.get("Content-Type"); ct != "" {
		// A parameter that does not parse leaves the media type
		// (mime.ErrInvalidMediaParameter).
		if mt, params, _ := mime.ParseMediaType(ct); mt != "" && strings.Contains(mt, "/") {
			e.mediaType, e.params = strings.ToLower(mt), params
		} else {
			e.mediaType = "text/plain"
		}
	}
	if cd := e.get("Content-Disposition"); cd != "" {
		d, params, _ := mime.ParseMediaType(cd)
		e.disp, e.dparams = strings.ToLower(d), params
	}
	boundary := e.params["boundary"]
	if !strings.HasPrefix(e.mediaType, "multipart/") || boundary == "" || depth >= maxMIMEDepth {
		return e
	}
	childType := "text/plain"
	if e.mediaType == "multipart/digest" {
		childType = "message/rfc822"
	}
	for _, p := range splitMultipart(body, boundary) {
		e.children = append(e.children, parseEntity(p, childType, e, depth+1))
	}
	return e
}

// splitMultipart returns the parts of a multipart body (RFC 2046 section
// 5.1.1): what lies between the "--boundary" lines, each without the line
// break that belongs to the next delimiter; the preamble and the epilogue
// are not parts. White space after a delimiter is allowed; a body whose
// closing delimiter is missing ends its last part at the end of the body
// (the emulator's own leniency, as mail readers show such mail).
func splitMultipart(body []byte, boundary string) [][]byte {
	delim := []byte("--" + boundary)
	var parts [][]byte
	start := -1
	for off := 0; off < len(body); {
		next := len(body)
		line := body[off:]
		if i := bytes.IndexByte(line, '\n'); i >= 0 {
			line, next = line[:i], off+i+1
		}
		if l := bytes.TrimRight(line, " \t\r"); bytes.HasPrefix(l, delim) {
			tail := l[len(delim):]
			closing := bytes.Equal(tail, []byte("--"))
			if len(tail) == 0 || closing {
				if start >= 0 {
					end := off
					if end > start && body[end-1] == '\n' {
						end--
						if end > start && body[end-1] == '\r' {
							end--
						}
					}
					parts = append(parts, body[start:end])
				}
				if closing {
					return parts
				}
				start = next
			}
		}
		off = next
	}
	if start >= 0 && start < len(body) {
		parts = append(parts, body[start:])
	}
	return parts
}

// decoded returns the content of a leaf entity with its
// Content-Transfer-Encoding undone: base64 (characters outside the
// alphabet skipped, padding optional, a trailing lone character dropped) or quoted-printable (decoded as far
// as it goes); anything else (7bit, 8bit, binary, none) as it is.
func (e *entity) decoded() []byte {
	switch strings.ToLower(strings.TrimSpace(e.get("Content-Transfer-Encoding"))) {
	case "base64":
		return decodeBase64Lenient(e.body)
	case "quoted-printable":
		b, _ := io.ReadAll(quotedprintable.NewReader(bytes.NewReader(e.body)))
		return b
	}
	return e.body
}

func decodeBase64Lenient(b []byte) []byte {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}

// text returns the content of a text entity as UTF-8 (see toUTF8).
func (e *entity) text() string { return toUTF8(e.decoded(), e.params["charset"]) }

// toUTF8 converts text in charset to UTF-8. The emulator converts
// ISO-8859-1 and windows-1252 (and their usual aliases); UTF-8, US-ASCII,
// a missing charset and every other charset are read as UTF-8, any byte
// that is not valid UTF-8 replaced with U+FFFD. This is the emulator's
// own rule: it uses the standard library alone, which carries no other
// charset tables, and MS-OXCMAIL only says that the charset is mapped to
// a code page.
func toUTF8(b []byte, charset string) string {
	switch strings.ToLower(strings.Trim(charset, "\" ")) {
	case "iso-8859-1", "iso8859-1", "iso_8859-1", "latin1", "l1", "cp819":
		return decode8bit(b, nil)
	case "windows-1252", "cp1252", "x-cp1252":
		return decode8bit(b, &cp1252)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// decode8bit decodes a one-byte charset that is Latin-1 except for
// 0x80–0x9F, which high (when set) maps.
func decode8bit(b []byte, high *[32]rune) string {
	var sb strings.Builder
	for _, c := range b {
		if high != nil && c >= 0x80 && c < 0xA0 {
			sb.WriteRune(high[c-0x80])
			continue
		}
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

// cp1252 is windows-1252 from 0x80 to 0x9F
// (https://www.unicode.org/Public/MAPPINGS/VENDORS/MICSFT/WINDOWS/CP1252.TXT);
// the five undefined bytes map to U+FFFD.
var cp1252 = [32]rune{
	'€', '\uFFFD', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\uFFFD', 'Ž', '\uFFFD',
	'\uFFFD', '‘', '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\uFFFD', 'ž', 'Ÿ',
}

// readMIMEContent reads the content of the MIME message raw.
//
// The body is chosen as MS-OXCMAIL 2.2.3.3.2 says
// (https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmail/454b1afc-4eaf-48a6-b49e-ec8c5a5ebe6a):
// the first entity, in the order of the MIME tree, that qualifies (see
// bodyOf), and among alternatives text/html before text/plain
// (MS-OXCMAIL 2.2.3.3.2.1, https://msdn.microsoft.com/library/gg709700).
// A text/html body is {"contentType": "html"}, a text/plain one
// {"contentType": "text"}, its content decoded (transfer encoding, then
// charset, see toUTF8). A message with no entity that qualifies has an
// empty text body (the emulator's rendering of "no body").
//
// Attachments are the other leaf entities, in order (see attachmentOf),
// except the text/plain and text/html renditions of the body inside the
// multipart/alternative that holds it. The emulator does not build
// MS-OXCMAIL's aggregate bodies (2.2.3.3.2.2, only for mail from Apple
// clients): a second text part is an attachment. text/enriched and
// text/calendar are not read as bodies (the emulator's own limit): they
// are attachments too.
//
// Signed and encrypted mail follows MS-OXOSMIME 2.1.3:
//   - a clear-signed message (multipart/signed) takes its body from the
//     first part, read as a message of its own, and has exactly one
//     attachment whose content is "the entire outer content of the
//     multipart/signed message MIME entity, including a Content-Type
//     header field", the other header fields left out
//     (https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxosmime/6d0deda8-4e31-4949-bdd6-8c2e54d04736);
//     Graph lists it as smime.p7m, the message's own attachments hidden
//     inside it (reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/4585).
//     The emulator names it smime.p7m with contentType multipart/signed.
//   - an opaque-signed or encrypted message (application/pkcs7-mime) has
//     no body ("The message body SHOULD NOT be set") and its one entity
//     as its attachment
//     (https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxosmime/58b44f9e-af38-4068-b100-fcfc8fae91a1),
//     which the general rules give.
func readMIMEContent(raw []byte) mimeContent {
	root := parseEntity(raw, "text/plain", nil, 0)
	c := mimeContent{headers: slices.Clone(root.header)}
	if c.headers == nil {
		c.headers = []internetHeader{}
	}
	if root.mediaType == "multipart/signed" && len(root.children) > 0 {
		body := findBody(root.children[0])
		c.body = bodyJSON(body)
		content := append([]byte("Content-Type: "+root.get("Content-Type")+"\r\n\r\n"), root.body...)
		c.atts = []*attachment{{name: "smime.p7m", contentType: "multipart/signed", content: content}}
		return c
	}
	body := findBody(root)
	c.body = bodyJSON(body)
	html := ""
	if body != nil && body.mediaType == "text/html" {
		html, _ = c.body["content"].(string)
	}
	unnamed := 0
	var walk func(e *entity)
	walk = func(e *entity) {
		switch {
		case len(e.children) > 0:
			for _, ch := range e.children {
				walk(ch)
			}
		case strings.HasPrefix(e.mediaType, "multipart/"):
			// A multipart left unsplit (no boundary, no parts, or
			// nested deeper than maxMIMEDepth) is read as nothing:
			// the emulator's own rule.
		case e == body || isRendition(e, body):
		default:
			c.atts = append(c.atts, attachmentOf(e, html, &unnamed))
		}
	}
	walk(root)
	return c
}

// bodyJSON renders the body entity b (nil: none).
func bodyJSON(b *entity) map[string]any {
	if b == nil {
		return map[string]any{"contentType": "text", "content": ""}
	}
	ct := "text"
	if b.mediaType == "text/html" {
		ct = "html"
	}
	return map[string]any{"contentType": ct, "content": b.text()}
}

// findBody returns the text entity that is the message body: the first
// entity of the tree under e, e first, that qualifies (bodyOf); nil when
// none does. It does not look inside attached messages.
func findBody(e *entity) *entity {
	if b := bodyOf(e); b != nil {
		return b
	}
	for _, ch := range e.children {
		if b := findBody(ch); b != nil {
			return b
		}
	}
	return nil
}

// bodyOf returns the text entity that e maps to the message body when e
// qualifies as the body (MS-OXCMAIL 2.2.3.3.2), nil otherwise. An entity
// with Content-Disposition "attachment" never qualifies. e qualifies when
// it is text/plain or text/html (e itself), or multipart/alternative with
// a text/plain or text/html child (the preferred alternative, see
// preferred). The page also qualifies multipart/related whose first
// child is text/html (or multipart/alternative with a text/html child)
// and multipart/mixed whose first child is text/plain or text/html, both
// mapping to that first child's text: findBody's order reaches that child
// first, so bodyOf needs no case for them.
func bodyOf(e *entity) *entity {
	if e.disp == "attachment" {
		return nil
	}
	switch e.mediaType {
	case "text/plain", "text/html":
		return e
	case "multipart/alternative":
		return preferred(e)
	}
	return nil
}

// isText reports a text/plain or text/html entity that is not an
// attachment.
func isText(e *entity) bool {
	return (e.mediaType == "text/plain" || e.mediaType == "text/html") && e.disp != "attachment"
}

// preferred returns the alternative of the multipart/alternative e that
// becomes the body: text/html before text/plain (MS-OXCMAIL 2.2.3.3.2.1),
// the first of each kind. A multipart/related alternative counts as the
// text/html it begins with, as mail clients send text/plain beside
// multipart/related HTML with its images (the emulator's reading: the
// page names only text alternatives). nil when e has neither.
func preferred(e *entity) *entity {
	var plain *entity
	for _, ch := range e.children {
		switch {
		case ch.disp == "attachment":
		case ch.mediaType == "text/html":
			return ch
		case ch.mediaType == "multipart/related":
			if b := relatedHTML(ch); b != nil {
				return b
			}
		case ch.mediaType == "text/plain" && plain == nil:
			plain = ch
		}
	}
	return plain
}

// relatedHTML returns the text/html that the multipart/related e begins
// with, itself or as the preferred alternative of its first child; nil
// when e does not begin with HTML.
func relatedHTML(e *entity) *entity {
	if len(e.children) == 0 {
		return nil
	}
	if b := bodyOf(e.children[0]); b != nil && b.mediaType == "text/html" {
		return b
	}
	return nil
}

// isRendition reports whether e is another rendition of the body b: a
// text/plain or text/html entity, not an attachment, inside a
// multipart/alternative that also holds b.
func isRendition(e, b *entity) bool {
	if b == nil || !isText(e) {
		return false
	}
	for p := e.parent; p != nil; p = p.parent {
		if p.mediaType == "multipart/alternative" && b.within(p) {
			return true
		}
	}
	return false
}

// within reports whether e lies under a.
func (e *entity) within(a *entity) bool {
	for p := e.parent; p != nil; p = p.parent {
		if p == a {
			return true
		}
	}
	return false
}

// inlineTypes are the media types MS-OXCMAIL 2.2.3.4.1.4.1 allows an
// inline attachment.
var inlineTypes = []string{"image/jpeg", "image/jpg", "image/pjpeg", "image/gif", "image/bmp", "image/png", "image/x-png"}

// attachmentOf makes the attachment of the leaf entity e; html is the
// HTML body ("" when the body is not HTML); unnamed counts the
// attachments named so far by the emulator.
//
//   - message/rfc822 is an attached message, an itemAttachment (MS-OXCMAIL
//     2.2.3.4.3, https://msdn.microsoft.com/library/gg680420: "MIME readers
//     SHOULD treat this attachment as an embedded message attachment");
//     its content is the attached message's MIME (what GET
//     .../attachments/{id}/$value returns for a message,
//     https://learn.microsoft.com/graph/api/attachment-get), its name the
//     Content-Type name, else the Content-Disposition filename, else the
//     Content-Description, else the attached message's Subject (the
//     order of 2.2.3.4.3), and its contentType message/rfc822 (MS-OXCMAIL
//     keeps the Content-Type of every attachment in PidTagAttachMimeTag).
//   - anything else is a fileAttachment: its content decoded, its
//     contentType the media type without parameters, its name the
//     Content-Disposition filename, else the Content-Type name, else the
//     Content-Description (RFC 2231 and RFC 2047 decoded; the order is the
//     emulator's own).
//   - contentId is the Content-ID without its angle brackets (MS-OXCMAIL
//     2.2.3.4.1.4,
//     https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmail/1d3645f4-6aec-49bf-bc38-413360a5fd1b).
//   - isInline follows MS-OXCMAIL 2.2.3.4.1.4.1
//     (https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmail/35b0a1ea-56b4-4bff-b9df-0c35c883a22b):
//     a child of multipart/related, with a Content-ID or a
//     Content-Location, referenced from the HTML body ("cid:" and the
//     Content-ID, or the Content-Location; the emulator does not check
//     that the reference is an <img>), of one of inlineTypes.
//   - an attachment without a name is named "ATT" and five digits
//     counting such attachments from 00001, with .txt for text/plain,
//     .htm for text/html and .bin for anything else (no extension for a
//     message). The emulator's own rule, after the ATT00001.txt names
//     Exchange is known for (Microsoft documents the pattern only for its
//     old gateways, https://mskb.pkisolutions.com/kb/146263).
func attachmentOf(e *entity, html string, unnamed *int) *attachment {
	a := &attachment{contentType: e.mediaType}
	a.contentID = strings.Trim(strings.TrimSpace(e.get("Content-ID")), "<>")
	item := e.mediaType == "message/rfc822"
	a.item = item
	a.content = e.decoded()
	names := []string{e.dparams["filename"], e.params["name"], e.get("Content-Description")}
	if item {
		names = []string{e.params["name"], e.dparams["filename"], e.get("Content-Description"), parseMIMEHeader(a.content).Get("Subject")}
	}
	for _, n := range names {
		if n = strings.TrimSpace(decodeWords(n)); n != "" {
			a.name = n
			break
		}
	}
	if a.name == "" {
		*unnamed++
		a.name = fmt.Sprintf("ATT%05d", *unnamed)
		switch {
		case item:
		case e.mediaType == "text/plain":
			a.name += ".txt"
		case e.mediaType == "text/html":
			a.name += ".htm"
		default:
			a.name += ".bin"
		}
	}
	loc := strings.TrimSpace(e.get("Content-Location"))
	if e.parent != nil && e.parent.mediaType == "multipart/related" && slices.Contains(inlineTypes, e.mediaType) {
		lower := strings.ToLower(html)
		referenced := (a.contentID != "" && strings.Contains(lower, "cid:"+strings.ToLower(a.contentID))) ||
			(loc != "" && strings.Contains(lower, strings.ToLower(loc)))
		a.isInline = referenced
	}
	return a
}

// bodyPreview is a message's bodyPreview: "The first 255 characters of
// the message body in text format"
// (https://learn.microsoft.com/graph/api/resources/message#properties).
// Microsoft does not say how the text is made; the emulator's rule: an
// HTML body is read as text (see htmlText), then every run of white space
// (Unicode's, no-break space included) becomes one space, the ends are
// trimmed, and the first 255 Unicode code points are kept.
func bodyPreview(body map[string]any) string {
	content, _ := body["content"].(string)
	if t, _ := body["contentType"].(string); strings.EqualFold(t, "html") {
		content = htmlText(content)
	}
	content = strings.Join(strings.Fields(strings.ReplaceAll(content, "\u00a0", " ")), " ")
	if utf8.RuneCountInString(content) > 255 {
		content = string([]rune(content)[:255])
	}
	return content
}

// htmlText reads HTML as text, for bodyPreview (the emulator's own
// reading): comments and the content of head, title, style and script are
// left out; a tag that breaks the flow of text (blockTags) becomes a
// space, any other tag nothing; character references are decoded
// (html.UnescapeString). A "<" that does not begin a tag is text.
func htmlText(s string) string {
	lower := asciiLower(s)
	var sb strings.Builder
	for i := 0; i < len(s); {
		switch {
		case strings.HasPrefix(s[i:], "<!--"):
			end := strings.Index(s[i+4:], "-->")
			if end < 0 {
				return sb.String()
			}
			i += 4 + end + 3
		case s[i] == '<' && i+1 < len(s) && isTagStart(s[i+1]):
			end := strings.IndexByte(s[i:], '>')
			if end < 0 {
				return sb.String()
			}
			closing, name := tagName(lower[i+1 : i+end])
			i += end + 1
			switch {
			case !closing && (name == "head" || name == "title" || name == "style" || name == "script"):
				j := strings.Index(lower[i:], "</"+name)
				if j < 0 {
					return sb.String()
				}
				i += j
				if k := strings.IndexByte(s[i:], '>'); k >= 0 {
					i += k + 1
				} else {
					i = len(s)
				}
			case slices.Contains(blockTags, name):
				sb.WriteByte(' ')
			}
		default:
			j := strings.IndexByte(s[i+1:], '<') + 1
			if j == 0 {
				j = len(s) - i
			}
			sb.WriteString(html.UnescapeString(s[i : i+j]))
			i += j
		}
	}
	return sb.String()
}

// blockTags are the HTML elements whose tags htmlText reads as a space.
var blockTags = []string{
	"address", "article", "blockquote", "br", "center", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3",
	"h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul",
}

func isTagStart(c byte) bool {
	return c == '/' || c == '!' || c == '?' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// tagName returns the name of the tag whose text (between < and >,
// lower case) is t, and whether it closes an element.
func tagName(t string) (closing bool, name string) {
	closing = strings.HasPrefix(t, "/")
	t = strings.TrimPrefix(t, "/")
	if i := strings.IndexAny(t, " \t\r\n/"); i >= 0 {
		t = t[:i]
	}
	return closing, t
}

// asciiLower lowers the ASCII letters of s alone, so that byte offsets
// into the result are offsets into s.
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
