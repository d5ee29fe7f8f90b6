package exchange

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/mail"
	"os"
	"regexp"
	"runtime"
	"strings"
	"time"
	"unicode/utf8"

	gomessage "github.com/emersion/go-message"
	gomail "github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/text/encoding/charmap"
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
	// maxFieldBytes bounds one header field (with its continuation
	// lines); the rest of a longer one is dropped.
	maxFieldBytes = 64 << 10
	// maxHeaderBytes bounds one header block; the fields beyond it are
	// read and dropped.
	maxHeaderBytes = 1 << 20
	// messageBuffer and partBuffer are the read buffers of a message and
	// of each MIME part. A line longer than its buffer is passed on in
	// pieces, never held whole.
	messageBuffer = 64 << 10
	partBuffer    = 16 << 10
)

// rebuildError says why a message cannot be created from its parsed
// fields (the JSON create) at all: MIME nested too deeply, a multipart
// whose boundary never appears, a main body or fields too large for one
// request. Put then stores it degraded, the original attached (see
// putDegraded).
type rebuildError struct{ msg string }

func (e *rebuildError) Error() string { return e.msg }

func rebuildErrorf(format string, args ...any) error {
	return &rebuildError{fmt.Sprintf(format, args...)}
}

var errBodyTooLarge = rebuildErrorf("main body over %d bytes: too large for a message created from JSON", maxBodyText)

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
	mem                          []byte      // the content, when in memory
	src                          io.ReaderAt // else its source, when not in the spool
	off                          int64       // its offset in src or the spool
}

// close removes the spool file.
func (p *parsedMessage) close() {
	if p.spool != nil {
		closeSpool(p.spool)
		p.spool = nil
	}
}

// createSpool creates a temporary file for message content that does not
// fit in memory (attachments, a message kept to be attached whole): in
// os.TempDir, named "mailferry-<random><suffix>". Where the system allows
// it (not Windows) its name is removed at once, the open file staying
// usable: the content, which is mail, is then never left on disk, even
// when the process is killed or crashes before closeSpool, since the
// kernel frees an unlinked file when its last descriptor closes.
func createSpool(suffix string) (*os.File, error) {
	f, err := os.CreateTemp("", "mailferry-*"+suffix)
	if err != nil {
		return nil, err
	}
	if runtime.GOOS != "windows" { // Windows cannot remove an open file
		if err := os.Remove(f.Name()); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// closeSpool closes a file of createSpool, removing it if its name is
// still there.
func closeSpool(f *os.File) {
	name := f.Name()
	f.Close()
	if runtime.GOOS == "windows" {
		os.Remove(name)
	}
}

// open returns the content of a.
func (p *parsedMessage) open(a *mimeAttachment) io.ReaderAt {
	switch {
	case a.mem != nil:
		return bytes.NewReader(a.mem)
	case a.src != nil:
		return io.NewSectionReader(a.src, a.off, a.size)
	case p.spool == nil:
		return bytes.NewReader(nil)
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
//
// It reads leniently, as mail readers do, and never fails on what they
// show anyway:
//
//   - a leading mbox "From " line is skipped;
//   - a header line without a colon is dropped when header fields follow
//     it, and otherwise begins the body (readHeader);
//   - a multipart without its closing boundary ends at the end of the
//     message, and so does its last part (multipartReader);
//   - header fields in unknown charsets or raw 8-bit bytes become UTF-8
//     as best it can (bestUTF8), and control characters are dropped;
//   - a body in an unknown charset is taken as UTF-8, as best it can;
//   - broken base64 and quoted-printable decode as far as they go
//     (base64Reader, qpReader);
//   - NUL bytes, lines of any length and empty messages are read like
//     any other, in bounded memory.
//
// What it cannot turn into a JSON create fails with a *rebuildError (see
// there); any other error is a read or spool failure.
func parseMIME(r io.Reader) (*parsedMessage, error) {
	br := bufio.NewReaderSize(r, messageBuffer)
	if err := skipMboxFrom(br); err != nil {
		return nil, fmt.Errorf("read the header: %w", err)
	}
	h, err := readHeader(br)
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

// skipMboxFrom skips a leading mbox "From " line (RFC 4155), which some
// stores keep at the top of each message.
func skipMboxFrom(br *bufio.Reader) error {
	if b, _ := br.Peek(5); string(b) != "From " {
		return nil
	}
	return discardLine(br)
}

func (p *parsedMessage) walk(h textproto.Header, r *bufio.Reader, depth int, alternative bool) error {
	if depth > maxDepth {
		return rebuildErrorf("MIME nested more than %d deep", maxDepth)
	}
	mt, params := mediaType(h.Get("Content-Type"))
	if mt == "" {
		mt, params = "text/plain", map[string]string{"charset": "us-ascii"}
	}
	disp, dparams := mediaType(h.Get("Content-Disposition"))
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] != "" {
		mr := newMultipartReader(r, params["boundary"])
		for {
			ph, part, err := mr.next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if err := p.walk(ph, part, depth+1, mt == "multipart/alternative"); err != nil {
				return err
			}
		}
		if _, err := io.Copy(io.Discard, r); err != nil { // the epilogue
			return fmt.Errorf("read the %s epilogue: %w", mt, err)
		}
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

// boundaryParam finds a boundary parameter that mime.ParseMediaType
// could not read.
var boundaryParam = regexp.MustCompile(`(?i);\s*boundary\s*=\s*(?:"([^"]+)"|([^\s;"]+))`)

// mediaType parses a Content-Type or Content-Disposition value as
// leniently as mail readers do: the type is lower-cased, parameters
// after a malformed one are lost but those before it are kept, and a
// multipart's boundary is looked for even then. "" when there is no
// type at all.
func mediaType(v string) (string, map[string]string) {
	mt, params, err := mime.ParseMediaType(v)
	if err != nil && !errors.Is(err, mime.ErrInvalidMediaParameter) {
		t, _, _ := strings.Cut(v, ";")
		mt, params = strings.ToLower(strings.TrimSpace(t)), map[string]string{}
		if strings.ContainsAny(mt, " \t\"") {
			mt = ""
		}
	}
	if params == nil {
		params = map[string]string{}
	}
	if strings.HasPrefix(mt, "multipart/") && params["boundary"] == "" {
		if sm := boundaryParam.FindStringSubmatch(v); sm != nil {
			params["boundary"] = sm[1] + sm[2]
		}
	}
	return mt, params
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
		f, err := createSpool(".spool")
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
		if s = strings.TrimSpace(cleanText(s, "")); s != "" {
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

// readHeader reads a header block from br, up to and including the empty
// line that ends it, leniently:
//
//   - a line that is not a header field ("name:" first) is a stray line
//     and dropped when the next line is a field or the end of the header;
//     otherwise the body begins with it (a message without a header, or
//     without the empty line after it), and it is left in br;
//   - the header also ends at the end of the input;
//   - a field longer than maxFieldBytes is cut, and fields beyond
//     maxHeaderBytes are dropped, so that memory stays bounded whatever
//     the input;
//   - each value is unfolded and made UTF-8 (bestUTF8, with the block's
//     own Content-Type charset for raw 8-bit bytes), without control
//     characters.
//
// Only a read error of the underlying reader is returned.
func readHeader(br *bufio.Reader) (textproto.Header, error) {
	var fields [][]byte
	total := 0
	for {
		peek, err := br.Peek(min(br.Size(), 1024))
		if len(peek) == 0 {
			if err == io.EOF {
				err = nil
			}
			return cleanHeader(fields), err
		}
		switch {
		case peek[0] == '\n' || bytes.HasPrefix(peek, []byte("\r\n")):
			return cleanHeader(fields), discardLine(br)
		case isFieldStart(peek):
			kv, err := readField(br)
			if total+len(kv) <= maxHeaderBytes {
				fields = append(fields, kv)
				total += len(kv)
			}
			if err != nil && err != io.EOF {
				return cleanHeader(fields), err
			}
		case strayLine(br):
			if err := discardLine(br); err != nil {
				return cleanHeader(fields), err
			}
		default:
			return cleanHeader(fields), nil
		}
	}
}

// isFieldStart reports whether b begins with a header field name and its
// colon (RFC 5322 ftext, with white space before the colon tolerated as
// it appears in the wild).
func isFieldStart(b []byte) bool {
	i := 0
	for i < len(b) && b[i] >= 33 && b[i] <= 126 && b[i] != ':' {
		i++
	}
	if i == 0 {
		return false
	}
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	return i < len(b) && b[i] == ':'
}

// strayLine reports whether the line at the head of br, which is not a
// header field, lies among header fields: the line after it (as far as
// the buffer shows) is a field or the empty line that ends the header.
func strayLine(br *bufio.Reader) bool {
	buf, _ := br.Peek(br.Size())
	i := bytes.IndexByte(buf, '\n')
	if i < 0 {
		return false
	}
	next := buf[i+1:]
	return len(next) > 0 && (next[0] == '\n' || bytes.HasPrefix(next, []byte("\r\n")) || isFieldStart(next))
}

// readField reads one header field with its continuation lines, at most
// maxFieldBytes of it; the rest is read and dropped.
func readField(br *bufio.Reader) ([]byte, error) {
	kv, err := readLineCapped(br, nil, maxFieldBytes)
	for err == nil {
		b, perr := br.Peek(1)
		if perr != nil || (b[0] != ' ' && b[0] != '\t') {
			break
		}
		kv, err = readLineCapped(br, kv, maxFieldBytes)
	}
	return kv, err
}

// readLineCapped appends the next line of br, with its line ending, to
// dst while dst stays within limit bytes, and reads the rest of the line
// without keeping it.
func readLineCapped(br *bufio.Reader, dst []byte, limit int) ([]byte, error) {
	for {
		chunk, err := br.ReadSlice('\n')
		if room := limit - len(dst); room > 0 {
			dst = append(dst, chunk[:min(len(chunk), room)]...)
		}
		if err != bufio.ErrBufferFull {
			return dst, err
		}
	}
}

// discardLine reads the next line of br, of any length, and drops it.
func discardLine(br *bufio.Reader) error {
	_, err := readLineCapped(br, nil, 0)
	if err == io.EOF {
		err = nil
	}
	return err
}

// cleanHeader makes a header of raw fields ("Name: value" with their
// continuation lines): each value unfolded and made clean UTF-8
// (cleanText, with the Content-Type charset of the block for raw 8-bit
// bytes).
func cleanHeader(fields [][]byte) textproto.Header {
	var h textproto.Header
	charset := ""
	for _, kv := range fields {
		k, v, _ := bytes.Cut(kv, []byte(":"))
		if strings.EqualFold(string(bytes.TrimSpace(k)), "Content-Type") {
			_, params := mediaType(unfold(v))
			charset = params["charset"]
		}
	}
	for _, kv := range fields {
		k, v, _ := bytes.Cut(kv, []byte(":"))
		name := string(bytes.TrimRight(k, " \t"))
		h.AddRaw([]byte(name + ": " + cleanText(unfold(v), charset) + "\r\n"))
	}
	return h
}

// unfold joins a folded header value into one line, as RFC 5322 unfolds
// it, and trims it.
func unfold(v []byte) string {
	var b strings.Builder
	for len(v) > 0 {
		line := v
		if i := bytes.IndexByte(v, '\n'); i >= 0 {
			line, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		line = bytes.TrimRight(line, "\r")
		if b.Len() > 0 && len(line) > 0 {
			b.WriteByte(' ')
		}
		b.Write(bytes.Trim(line, " \t"))
	}
	return b.String()
}

// cleanText returns s as UTF-8 (bestUTF8, charset for raw 8-bit bytes)
// without control characters other than tab, which a Graph string does
// not take well: NUL in particular.
func cleanText(s, charset string) string {
	s = bestUTF8([]byte(s), charset)
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return -1
		}
		return r
	}, s)
}

func isControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// bestUTF8 returns b as UTF-8, as mail readers show text whose charset is
// unknown or wrong: valid UTF-8 as it is; else decoded from charset when
// golang.org/x/text knows it; else each byte that is not part of valid
// UTF-8 read as Windows-1252, the most common charset of unlabelled 8-bit
// mail.
func bestUTF8(b []byte, charset string) string {
	if utf8.Valid(b) {
		return string(b)
	}
	if cs := strings.ToLower(strings.TrimSpace(charset)); cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if enc, err := htmlindex.Get(cs); err == nil {
			if d, err := enc.NewDecoder().Bytes(b); err == nil && utf8.Valid(d) {
				return string(d)
			}
		}
	}
	var out strings.Builder
	out.Grow(len(b) + len(b)/2)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r == utf8.RuneError && n <= 1 {
			r = charmap.Windows1252.DecodeByte(b[0])
			n = 1
		}
		out.WriteRune(r)
		b = b[n:]
	}
	return out.String()
}

// multipartReader reads the parts of a multipart body (RFC 2046 5.1.1)
// leniently: a delimiter line is "--boundary" followed only by white
// space (as mime/multipart requires, so that a longer inner boundary is
// not taken for it); the closing delimiter may be missing, and then the
// last part and the multipart end at the end of the input; the preamble
// and the epilogue are dropped. Lines longer than the buffer are passed
// on in pieces.
type multipartReader struct {
	br    *bufio.Reader
	dash  []byte // "--" + boundary
	part  *partReader
	ended bool // the closing delimiter or the end of the input was met
	eof   bool // the end of the input was met
}

func newMultipartReader(br *bufio.Reader, boundary string) *multipartReader {
	return &multipartReader{br: br, dash: []byte("--" + boundary)}
}

// next returns the header and body of the next part, io.EOF after the
// last. A multipart in which the boundary never appears cannot be read
// as one: a *rebuildError.
func (mr *multipartReader) next() (textproto.Header, *bufio.Reader, error) {
	first := mr.part == nil
	if first {
		// The preamble is read as a part that is then dropped.
		mr.part = &partReader{mr: mr}
	}
	if _, err := io.Copy(io.Discard, mr.part); err != nil {
		return textproto.Header{}, nil, err
	}
	switch {
	case first && mr.eof:
		return textproto.Header{}, nil, rebuildErrorf("multipart boundary %q never appears", mr.dash[2:])
	case mr.ended:
		return textproto.Header{}, nil, io.EOF
	}
	mr.part = &partReader{mr: mr}
	br := bufio.NewReaderSize(mr.part, partBuffer)
	h, err := readHeader(br)
	if err != nil {
		return textproto.Header{}, nil, err
	}
	if h.Len() == 0 {
		// A delimiter at the very end of a message cut short opens no
		// part.
		if _, err := br.Peek(1); err == io.EOF && mr.eof {
			return textproto.Header{}, nil, io.EOF
		}
	}
	return h, br, nil
}

// delimiter tells whether line (with its line ending) is a delimiter line
// of mr, and whether it is the closing one.
func (mr *multipartReader) delimiter(line []byte) (is, closing bool) {
	if !bytes.HasPrefix(line, mr.dash) {
		return false, false
	}
	rest := line[len(mr.dash):]
	if bytes.HasPrefix(rest, []byte("--")) {
		closing, rest = true, rest[2:]
	}
	return len(bytes.Trim(rest, " \t\r\n")) == 0, closing
}

// partReader reads one part of a multipart: the lines up to the next
// delimiter line, without the line ending before it (which belongs to
// the delimiter, RFC 2046 5.1.1), or up to the end of the input.
type partReader struct {
	mr      *multipartReader
	pending []byte // read, not yet returned
	buf     []byte
	eol     []byte // the line ending held back
	midLine bool   // inside a line longer than the buffer
	done    bool
}

func (p *partReader) Read(b []byte) (int, error) {
	for len(p.pending) == 0 {
		if p.done {
			return 0, io.EOF
		}
		if err := p.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(b, p.pending)
	p.pending = p.pending[n:]
	return n, nil
}

// fill reads the next line, or the next piece of a long one.
func (p *partReader) fill() error {
	mr := p.mr
	line, err := mr.br.ReadSlice('\n')
	if len(line) == 0 && err != nil && err != bufio.ErrBufferFull {
		p.done = true
		if err == io.EOF {
			mr.ended, mr.eof = true, true // no closing delimiter: the part ends here
			return nil
		}
		return err
	}
	if !p.midLine {
		if is, closing := mr.delimiter(line); is {
			p.done = true
			mr.ended = closing
			return nil
		}
	}
	p.buf = append(p.buf[:0], p.eol...)
	content, eol := line, []byte(nil)
	switch {
	case bytes.HasSuffix(line, []byte("\r\n")):
		content, eol = line[:len(line)-2], line[len(line)-2:]
	case bytes.HasSuffix(line, []byte("\n")):
		content, eol = line[:len(line)-1], line[len(line)-1:]
	}
	p.buf = append(p.buf, content...)
	p.eol = append(p.eol[:0], eol...)
	p.midLine = err == bufio.ErrBufferFull
	p.pending = p.buf
	if err != nil && err != bufio.ErrBufferFull && err != io.EOF {
		return err
	}
	return nil
}

// decodeTransfer undoes a part's Content-Transfer-Encoding, leniently:
// base64 and quoted-printable decode as far as they can.
func decodeTransfer(h textproto.Header, r io.Reader) io.Reader {
	switch cte := strings.TrimSpace(h.Get("Content-Transfer-Encoding")); {
	case strings.EqualFold(cte, "base64"):
		return &base64Reader{r: r}
	case strings.EqualFold(cte, "quoted-printable"):
		return newQPReader(r)
	}
	return r
}

// base64Values maps a byte to its base64 value: the standard alphabet,
// with the URL alphabet's - and _ as well; padBase64 for '=',
// notBase64 for the rest.
var base64Values = func() (t [256]byte) {
	for i := range t {
		t[i] = notBase64
	}
	for i, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = byte(i)
	}
	t['-'], t['_'], t['='] = 62, 63, padBase64
	return t
}()

const (
	notBase64 = 0xff
	padBase64 = 0xfe
)

// base64Reader decodes base64 as mail readers do: it skips what is not
// base64 (line breaks, spaces, junk), and decodes as far as it can: a
// group cut short by padding or by the end of the input gives the bytes
// it holds (a lone character gives none), so that encodings glued
// together and truncated ones both decode.
type base64Reader struct {
	r    io.Reader
	in   [4096]byte
	out  [3*4096/4 + 3]byte
	q    [4]byte
	nq   int
	head []byte // decoded, not yet returned
	err  error
}

func (d *base64Reader) Read(p []byte) (int, error) {
	for len(d.head) == 0 {
		if d.err != nil {
			return 0, d.err
		}
		n, err := d.r.Read(d.in[:])
		o := 0
		for _, c := range d.in[:n] {
			v := base64Values[c]
			switch {
			case v == notBase64:
				continue
			case v == padBase64:
				o += d.flush(d.out[o:])
				continue
			}
			d.q[d.nq] = v
			d.nq++
			if d.nq == 4 {
				o += d.flush(d.out[o:])
			}
		}
		if err != nil {
			o += d.flush(d.out[o:])
			d.err = err
		}
		d.head = d.out[:o]
	}
	n := copy(p, d.head)
	d.head = d.head[n:]
	return n, nil
}

// flush decodes the group held (2 to 4 characters) into out.
func (d *base64Reader) flush(out []byte) int {
	q, n := d.q, d.nq
	d.nq = 0
	switch n {
	case 4:
		out[0], out[1], out[2] = q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2, q[2]<<6|q[3]
		return 3
	case 3:
		out[0], out[1] = q[0]<<2|q[1]>>4, q[1]<<4|q[2]>>2
		return 2
	case 2:
		out[0] = q[0]<<2 | q[1]>>4
		return 1
	}
	return 0
}

// qpReader decodes quoted-printable (RFC 2045 6.7) as mail readers do:
// "=XX" (hex, either case) is a byte, "=" at the end of a line (white
// space after it tolerated) is a soft line break, white space at the end
// of a line is dropped, and everything else passes as it is: an "=" not
// followed by hex, control characters, 8-bit bytes, lines of any length.
type qpReader struct {
	br   *bufio.Reader
	ws   []byte // white space held until it is known not to end the line
	out  []byte
	head []byte
	err  error
}

func newQPReader(r io.Reader) *qpReader { return &qpReader{br: bufio.NewReaderSize(r, 4096)} }

// maxHeldSpace is the most white space qpReader holds back.
const maxHeldSpace = 1024

func (q *qpReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(q.head) > 0 {
			c := copy(p[n:], q.head)
			q.head = q.head[c:]
			n += c
			continue
		}
		if q.err != nil {
			break
		}
		q.step()
	}
	if n > 0 {
		return n, nil
	}
	return 0, q.err
}

// step decodes the next byte of input (and what it needs of lookahead)
// into q.head, or records the end of the input.
func (q *qpReader) step() {
	q.out = q.out[:0]
	c, err := q.br.ReadByte()
	if err != nil {
		q.err = err // white space at the end is dropped
		return
	}
	switch c {
	case ' ', '\t':
		q.ws = append(q.ws, c)
		if len(q.ws) > maxHeldSpace {
			q.out = append(q.out, q.ws...)
			q.ws = q.ws[:0]
		}
	case '\n':
		q.ws = q.ws[:0]
		q.out = append(q.out, '\n')
	case '\r':
		if b, _ := q.br.Peek(1); len(b) == 1 && b[0] == '\n' {
			q.br.ReadByte()
			q.ws = q.ws[:0]
			q.out = append(q.out, '\r', '\n')
			break
		}
		q.out = append(append(q.out, q.ws...), '\r')
		q.ws = q.ws[:0]
	case '=':
		q.out = append(q.out, q.ws...)
		q.ws = q.ws[:0]
		b, _ := q.br.Peek(2)
		if len(b) == 2 && isHex(b[0]) && isHex(b[1]) {
			q.br.Discard(2)
			q.out = append(q.out, unhex(b[0])<<4|unhex(b[1]))
			break
		}
		if k, ok := softBreak(q.br); ok {
			q.br.Discard(k)
			break
		}
		q.out = append(q.out, '=')
	default:
		q.out = append(append(q.out, q.ws...), c)
		q.ws = q.ws[:0]
	}
	q.head = q.out
}

// softBreak reports whether what follows an "=" is a soft line break:
// white space, then a line ending or the end of the input; k is its
// length.
func softBreak(br *bufio.Reader) (k int, ok bool) {
	b, err := br.Peek(min(br.Size(), maxHeldSpace))
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	switch {
	case i < len(b) && b[i] == '\n':
		return i + 1, true
	case i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n':
		return i + 2, true
	case i == len(b) && err != nil:
		return i, true // "=" at the end of the input
	}
	return 0, false
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// readText reads a text body, at most maxBodyText bytes, as UTF-8: from
// its charset when golang.org/x/text knows it, else as it is (bestUTF8),
// without NUL bytes.
func readText(r io.Reader, charset string) (string, error) {
	cs := strings.ToLower(strings.TrimSpace(charset))
	if cs != "" && cs != "utf-8" && cs != "us-ascii" {
		if enc, err := htmlindex.Get(cs); err == nil {
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
	b = bytes.ReplaceAll(b, []byte{0}, nil)
	return bestUTF8(b, ""), nil
}

// wordDecoder decodes RFC 2047 encoded words in any charset that
// golang.org/x/text knows; words in another charset are taken as they
// are (and made UTF-8 by cleanText).
var wordDecoder = &mime.WordDecoder{CharsetReader: func(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(strings.ToLower(charset))
	if err != nil {
		return r, nil
	}
	return enc.NewDecoder().Reader(r), nil
}}

// decoded returns header field k with encoded words decoded, as clean
// UTF-8 (cleanText).
func decoded(h textproto.Header, k string) string {
	v := h.Get(k)
	if d, err := wordDecoder.DecodeHeader(v); err == nil {
		v = d
	}
	return cleanText(v, "")
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
