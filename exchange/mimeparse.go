package exchange

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/htmlindex"
)

// Limits of the parse of a message for the JSON create.
const (
	// maxBodyText is the largest main body, in bytes of UTF-8 text, that
	// the JSON create can carry: the whole create must fit in Graph's
	// 4 MB request.
	maxBodyText = 3 << 20
	// memAttachment: attachments up to this size are kept in memory;
	// larger ones are spooled to a temporary file.
	memAttachment = 256 << 10
	// maxMemAttachments bounds the attachment bytes kept in memory per
	// message; beyond it every attachment is spooled.
	maxMemAttachments = 8 << 20
	// maxDepth bounds the nesting of multiparts.
	maxDepth = 20
)

// parsedMessage is a MIME message taken apart for the JSON create: the
// top-level header, the main body and the attachments.
type parsedMessage struct {
	header   textproto.Header
	body     string
	bodyHTML bool
	haveBody bool
	atts     []*mimeAttachment

	spool    *os.File // attachments too large for memory, end to end
	spoolLen int64
	memUsed  int64
	n        int // parts seen, for generated names
}

// mimeAttachment is a MIME part that becomes a fileAttachment.
type mimeAttachment struct {
	name, contentType, contentID string
	inline                       bool
	size                         int64
	mem                          []byte // the content, when in memory
	off                          int64  // else its offset in the spool
}

// close removes the spool file.
func (p *parsedMessage) close() {
	if p.spool != nil {
		name := p.spool.Name()
		p.spool.Close()
		os.Remove(name)
		p.spool = nil
	}
}

// open returns the content of a.
func (p *parsedMessage) open(a *mimeAttachment) io.ReaderAt {
	if a.mem != nil || p.spool == nil {
		return bytes.NewReader(a.mem)
	}
	return io.NewSectionReader(p.spool, a.off, a.size)
}

// content reads the whole content of a into memory.
func (p *parsedMessage) content(a *mimeAttachment) ([]byte, error) {
	if a.mem != nil || a.size == 0 {
		return a.mem, nil
	}
	b := make([]byte, a.size)
	_, err := p.open(a).ReadAt(b, 0)
	if err == io.EOF {
		err = nil
	}
	return b, err
}

// parseMIME reads a message from r in one pass, without holding it in
// memory: the main body is kept (at most maxBodyText), small attachments
// are kept in memory and the others are spooled to a temporary file.
//
// The main body is the first text/plain or text/html part that is not an
// attachment; within multipart/alternative, text/html is preferred.
// Every other leaf part becomes an attachment with its decoded bytes
// (transfer encoding removed, charset untouched), its file name (or a
// generated one), its Content-Type and, for inline parts, its Content-ID.
// A message/rfc822 part becomes a file attachment holding the message
// (name.eml).
func parseMIME(r io.Reader) (*parsedMessage, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	h, err := textproto.ReadHeader(br)
	if err != nil {
		return nil, fmt.Errorf("read the header: %w", err)
	}
	p := &parsedMessage{header: h}
	if err := p.walk(h, br, 0, false); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *parsedMessage) walk(h textproto.Header, r io.Reader, depth int, alternative bool) error {
	if depth > maxDepth {
		return errors.New("MIME nested too deeply")
	}
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mt == "" {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	disp, dparams, _ := mime.ParseMediaType(h.Get("Content-Disposition"))
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		mr := textproto.NewMultipartReader(r, params["boundary"])
		for {
			part, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return fmt.Errorf("read %s part: %w", mt, err)
			}
			if err := p.walk(part.Header, part, depth+1, mt == "multipart/alternative"); err != nil {
				return err
			}
		}
		_, _ = io.Copy(io.Discard, r) // the epilogue
		return nil
	}
	p.n++
	isText := mt == "text/plain" || mt == "text/html"
	if isText && disp != "attachment" && (!p.haveBody || (alternative && mt == "text/html" && !p.bodyHTML)) {
		text, err := readText(decodeTransfer(h, r), params["charset"])
		if err != nil {
			return err
		}
		p.body, p.bodyHTML, p.haveBody = text, mt == "text/html", true
		return nil
	}
	a := &mimeAttachment{contentType: mt, inline: disp == "inline"}
	if cs := params["charset"]; cs != "" && strings.HasPrefix(mt, "text/") {
		a.contentType = mt + "; charset=" + cs
	}
	if cid := msgID(h, "Content-Id"); cid != "" {
		a.contentID = cid
		if disp == "" {
			a.inline = true
		}
	}
	a.name = attachmentName(dparams["filename"], params["name"], mt, p.n)
	return p.store(a, decodeTransfer(h, r))
}

// store reads an attachment's content into memory or the spool.
func (p *parsedMessage) store(a *mimeAttachment, r io.Reader) error {
	var buf bytes.Buffer
	limit := int64(memAttachment)
	if p.memUsed >= maxMemAttachments {
		limit = 0
	}
	n, err := io.Copy(&buf, io.LimitReader(r, limit+1))
	if err != nil {
		return fmt.Errorf("read attachment %q: %w", a.name, err)
	}
	if n <= limit {
		a.mem, a.size = buf.Bytes(), n
		if a.mem == nil {
			a.mem = []byte{}
		}
		p.memUsed += n
		p.atts = append(p.atts, a)
		return nil
	}
	if p.spool == nil {
		f, err := os.CreateTemp("", "mailferry-*.spool")
		if err != nil {
			return fmt.Errorf("spool attachment: %w", err)
		}
		p.spool = f
	}
	a.off = p.spoolLen
	m, err := io.Copy(p.spool, io.MultiReader(&buf, r))
	if err != nil {
		return fmt.Errorf("spool attachment %q: %w", a.name, err)
	}
	a.size = m
	p.spoolLen += m
	p.atts = append(p.atts, a)
	return nil
}

// attachmentName returns a part's file name: Content-Disposition's
// filename, else Content-Type's name (RFC 2231 is decoded by
// mime.ParseMediaType, RFC 2047 here), else "part<n>" with an extension
// for its type ("message.eml" style for message/rfc822).
func attachmentName(filename, name, mt string, n int) string {
	for _, s := range []string{filename, name} {
		if s == "" {
			continue
		}
		if d, err := wordDecoder.DecodeHeader(s); err == nil {
			s = d
		}
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	ext := ".bin"
	switch {
	case mt == "message/rfc822":
		ext = ".eml"
	case mt == "text/plain":
		ext = ".txt"
	case mt == "text/html":
		ext = ".html"
	default:
		if exts, _ := mime.ExtensionsByType(mt); len(exts) > 0 {
			ext = exts[0]
		}
	}
	return fmt.Sprintf("part%d%s", n, ext)
}

// decodeTransfer undoes a part's Content-Transfer-Encoding.
func decodeTransfer(h textproto.Header, r io.Reader) io.Reader {
	switch cte := strings.TrimSpace(h.Get("Content-Transfer-Encoding")); {
	case strings.EqualFold(cte, "base64"):
		return base64.NewDecoder(base64.StdEncoding, &base64Cleaner{r: r})
	case strings.EqualFold(cte, "quoted-printable"):
		return quotedprintable.NewReader(r)
	}
	return r
}

// base64Cleaner drops what is not base64 (line breaks, spaces, junk after
// the padding), as mail readers do.
type base64Cleaner struct {
	r    io.Reader
	done bool
}

func (c *base64Cleaner) Read(p []byte) (int, error) {
	for {
		if c.done {
			return 0, io.EOF
		}
		n, err := c.r.Read(p)
		j := 0
		for _, b := range p[:n] {
			switch {
			case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '+', b == '/', b == '=':
				p[j] = b
				j++
			}
		}
		if err == io.EOF {
			c.done = true
		}
		if j > 0 || err != nil {
			if err == io.EOF && j > 0 {
				err = nil
			}
			return j, err
		}
	}
}

// readText reads a text body, at most maxBodyText bytes, as UTF-8.
func readText(r io.Reader, charset string) (string, error) {
	if cs := strings.TrimSpace(charset); cs != "" && !strings.EqualFold(cs, "utf-8") && !strings.EqualFold(cs, "us-ascii") {
		if enc, err := htmlindex.Get(strings.ToLower(cs)); err == nil {
			r = enc.NewDecoder().Reader(r)
		}
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBodyText+1))
	if err != nil {
		return "", fmt.Errorf("read the body: %w", err)
	}
	if len(b) > maxBodyText {
		return "", errBodyTooLarge
	}
	s := string(b)
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, nil
}

var errBodyTooLarge = fmt.Errorf("main body over %d bytes: too large for a message created from JSON", maxBodyText)

// wordDecoder decodes RFC 2047 encoded words in any charset that
// golang.org/x/text knows.
var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(strings.ToLower(charset))
	if err != nil {
		return nil, err
	}
	return enc.NewDecoder().Reader(r), nil
}}

// decoded returns header field k with encoded words decoded.
func decoded(h textproto.Header, k string) string {
	v := h.Get(k)
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		return d
	}
	return v
}

// addresses parses an address list header; an unparsable one yields what
// can be parsed of it, address by address.
func addresses(h textproto.Header, k string) []*mail.Address {
	v := strings.TrimSpace(h.Get(k))
	if v == "" {
		return nil
	}
	ap := mail.AddressParser{WordDecoder: wordDecoder}
	if list, err := ap.ParseList(v); err == nil {
		return list
	}
	var out []*mail.Address
	for _, s := range strings.Split(v, ",") {
		if a, err := ap.Parse(s); err == nil {
			out = append(out, a)
		}
	}
	return out
}

// messageDate returns the Date header's time, if there is one and it
// parses.
func messageDate(h textproto.Header) (time.Time, bool) {
	t, err := mailHeader(h).Date()
	return t, err == nil && !t.IsZero()
}

// messageID returns the Message-ID header's msg-id, with its angle
// brackets, as Graph's internetMessageId wants it; "" when there is none.
// A value that is not an RFC 5322 msg-id is taken as it is.
func messageID(h textproto.Header) string {
	if id, err := mailHeader(h).MessageID(); err == nil && id != "" {
		return "<" + id + ">"
	}
	return strings.TrimSpace(h.Get("Message-Id"))
}

// msgID returns the first msg-id of header field k (Content-ID, say)
// without its angle brackets, parsed by go-message; a value that does not
// parse is trimmed of white space and angle brackets.
func msgID(h textproto.Header, k string) string {
	mh := mailHeader(h)
	if ids, err := mh.MsgIDList(k); err == nil && len(ids) > 0 {
		return ids[0]
	}
	return strings.Trim(strings.TrimSpace(h.Get(k)), "<>")
}

func mailHeader(h textproto.Header) *gomail.Header {
	return &gomail.Header{Header: gomessage.Header{Header: h}}
}

// parsedHeader is the part of textproto.Header that xHeaders reads.
type parsedHeader interface {
	Fields() textproto.HeaderFields
}
