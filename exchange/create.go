package exchange

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/mail"
	"strings"
	"time"

	"github.com/mailferry/mailferry/migrate"
)

// PendingProperty is the id of the named extended property that marks a
// message Put is still building through the JSON create (its attachments
// are not all uploaded yet), with the migrate.SourceID as value. Put sets
// WatermarkProperty only once the message is complete, so that
// FindWatermark never returns a partial copy, and deletes the partial
// copies an interrupted earlier Put left behind before it starts again.
const PendingProperty = "String {e41bb99b-fe1e-4497-b99a-d015dcc8d579} Name mailferryPendingSourceId"

// The MAPI properties set when a message is created from JSON (MS-OXPROPS).
const (
	messageFlagsProperty = "Integer 0x0E07"    // PidTagMessageFlags
	deliveryTimeProperty = "SystemTime 0x0E06" // PidTagMessageDeliveryTime: receivedDateTime
	submitTimeProperty   = "SystemTime 0x0039" // PidTagClientSubmitTime: sentDateTime
)

// maxRequest is Graph's request size limit, 4 MB
// (https://learn.microsoft.com/graph/api/user-post-messages), less room
// for what this package does not count exactly.
const maxRequest = 4<<20 - 16<<10

// putJSON is Put's JSON path for body, the whole MIME of m, whose size
// the source may have got wrong: it reads body once, parsing it
// (parseMIME) while it keeps a copy of the bytes (rawCopy), checks that
// they are at most MaxMessageSize, and creates m from its parsed fields;
// what cannot be created so is stored degraded, the original attached
// (rebuildOrDegrade). Nothing is sent before the whole body is read.
func (mb *Mailbox) putJSON(ctx context.Context, op, folderID string, m *migrate.Message, body io.Reader) (string, error) {
	raw := newRawCopy(m.Size)
	defer raw.close()
	src := &sourceReader{r: body}
	in := io.TeeReader(src, raw)
	p, perr := parseMIME(in)
	if p != nil {
		defer p.close()
	}
	_, derr := io.Copy(io.Discard, in) // what the parse left: the copy is whole, and counted
	switch {
	case src.err != nil:
		return "", fmt.Errorf("exchange: %s: read body: %w", op, src.err)
	case raw.err != nil:
		return "", fmt.Errorf("exchange: %s: keep a copy of the message: %w", op, raw.err)
	case derr != nil:
		return "", fmt.Errorf("exchange: %s: read body: %w", op, derr)
	case raw.n > MaxMessageSize:
		return "", tooLarge(op, raw.n)
	}
	return mb.rebuildOrDegrade(ctx, op, folderID, m, p, perr, raw, nil)
}

// sourceReader records the first read error of the source, other than
// io.EOF, so that a failure to read the message is never taken for bad
// MIME.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF && s.err == nil {
		s.err = err
	}
	return n, err
}

// createParsed creates m in folderID with POST
// /users/{id}/mailFolders/{id}/messages and create, its JSON
// (https://learn.microsoft.com/graph/api/user-post-messages), then adds
// the attachments of p that did not fit in that request, and returns the
// new item's id. A message built in one request carries WatermarkProperty
// from its creation; one built in several carries PendingProperty until
// its last attachment is in, then the watermark, and the partial copies
// an interrupted earlier Put left behind are deleted first (always, with
// clearFirst set). The create is guarded against a lost answer by that stamp.
// A create over Graph's 4 MB request is a *rebuildError, sent nowhere.
func (mb *Mailbox) createParsed(ctx context.Context, op, folderID string, m *migrate.Message,
	create map[string]any, p *parsedMessage, clearFirst bool) (string, error) {
	payloadSize := jsonSize(create)
	var later []*mimeAttachment // attachments sent after the create
	var inline []map[string]any
	type attKey struct {
		name   string
		inline bool
	}
	alike := map[attKey]int{} // attachments the message has, by name and inline state
	for _, a := range p.atts {
		need := base64.StdEncoding.EncodedLen(int(a.size)) + len(a.name) + len(a.contentType) + len(a.contentID) + 200
		if len(later) == 0 && payloadSize+need <= maxRequest {
			b, err := p.content(a)
			if err != nil {
				return "", fmt.Errorf("exchange: %s: read spooled attachment: %w", op, err)
			}
			inline = append(inline, fileAttachment(a, b))
			alike[attKey{a.name, a.inline}]++
			payloadSize += need
			continue
		}
		later = append(later, a)
	}
	if len(inline) > 0 {
		create["attachments"] = inline
	}
	if payloadSize > maxRequest {
		return "", migrate.ItemError(fmt.Errorf("exchange: %s: %w", op,
			rebuildErrorf("the message's fields and body take more than Graph's 4 MB request")))
	}

	sid := m.ID.String()
	stamp := WatermarkProperty
	if len(later) > 0 {
		// Built in several requests: marked pending until complete.
		stamp = PendingProperty
	}
	if len(later) > 0 || clearFirst {
		if id, err := mb.clearPending(ctx, folderID, m.ID); err != nil || id != "" {
			return id, err
		}
	}
	props, _ := create["singleValueExtendedProperties"].([]extendedProperty)
	create["singleValueExtendedProperties"] = append(props, extendedProperty{stamp, sid})

	guard := func(ctx context.Context) (string, error) {
		return mb.findStamped(ctx, folderID, stamp, m.ID)
	}
	id, err := mb.createItem(ctx, op+": create from JSON", guard, folderMessagesPath,
		map[string]string{"folder": folderID}, create)
	if err != nil || len(later) == 0 {
		return id, err
	}
	for _, a := range later {
		k := attKey{a.name, a.inline}
		if err := mb.addAttachment(ctx, id, p, a, alike[k]); err != nil {
			mb.discard(ctx, id)
			return "", classify(fmt.Sprintf("%s: attachment %q (%d bytes)", op, a.name, a.size), err)
		}
		alike[k]++
	}
	stamped := map[string]any{"singleValueExtendedProperties": []extendedProperty{{WatermarkProperty, sid}}}
	if err := mb.patchMessage(ctx, id, stamped); err != nil {
		mb.discard(ctx, id)
		return "", classify(op+": set watermark", err)
	}
	return id, nil
}

// clearPending deletes the partial copies of id that an interrupted
// earlier Put left in folderID (stamped PendingProperty, not
// WatermarkProperty), and returns the id of a complete one if there is
// one.
func (mb *Mailbox) clearPending(ctx context.Context, folderID string, id migrate.SourceID) (string, error) {
	msgs, err := mb.listStamped(ctx, folderID, stampFilter(PendingProperty, id))
	if err != nil {
		return "", classify(fmt.Sprintf("find partial copies of %s in folder %s", id, folderID), err)
	}
	var partial []string
	for _, it := range msgs {
		if it.GetId() == nil {
			continue
		}
		if len(it.GetSingleValueExtendedProperties()) > 0 {
			return *it.GetId(), nil // complete: an earlier Put finished it
		}
		partial = append(partial, *it.GetId())
	}
	for _, pid := range partial {
		mb.c.logger.LogAttrs(ctx, slog.LevelInfo, "exchange: deleting a partial copy left by an interrupted put",
			slog.String("user", mb.user), slog.String("message", pid), slog.String("source", id.String()))
		mb.discard(ctx, pid)
	}
	return "", nil
}

// messageJSON returns the JSON create of message m from its parsed MIME
// (https://learn.microsoft.com/graph/api/resources/message): the
// addresses, subject, Message-ID, importance, main body, x- headers,
// flags and categories, and the MAPI properties that only creation can
// set: PidTagMessageFlags (read or unread, non-draft, unless \Draft),
// PidTagMessageDeliveryTime (INTERNALDATE) and PidTagClientSubmitTime
// (the Date header), plus PidTagLastVerbExecuted for \Answered.
func messageJSON(p *parsedMessage, m *migrate.Message) map[string]any {
	h := p.header
	flags := newItemFlags(m.Flags)
	var props []extendedProperty
	if !m.HasFlag(migrate.FlagDraft) {
		read := "0" // non-draft (no MSGFLAG_UNSENT), unread
		if flags.read {
			read = "1" // MSGFLAG_READ
		}
		props = append(props, extendedProperty{messageFlagsProperty, read})
		if !m.InternalDate.IsZero() {
			props = append(props, extendedProperty{deliveryTimeProperty, systemTime(m.InternalDate)})
		}
	}
	if t, ok := messageDate(h); ok {
		props = append(props, extendedProperty{submitTimeProperty, systemTime(t)})
	}
	out := flags.properties(false, props...)
	out["subject"] = decoded(h, "Subject")
	body := map[string]string{"contentType": "text", "content": p.body}
	if p.bodyHTML {
		body["contentType"] = "html"
	}
	out["body"] = body
	if list := addresses(h, "From"); len(list) > 0 {
		out["from"] = recipient(list[0])
	}
	if list := addresses(h, "Sender"); len(list) > 0 {
		out["sender"] = recipient(list[0])
	}
	for k, f := range map[string]string{"To": "toRecipients", "Cc": "ccRecipients", "Bcc": "bccRecipients", "Reply-To": "replyTo"} {
		if list := addresses(h, k); len(list) > 0 {
			rs := make([]map[string]any, len(list))
			for i, a := range list {
				rs[i] = recipient(a)
			}
			out[f] = rs
		}
	}
	if id := messageID(h); id != "" {
		out["internetMessageId"] = id
	}
	if imp := importance(&h); imp != "" {
		out["importance"] = imp
	}
	if hs := xHeaders(&h); len(hs) > 0 {
		out["internetMessageHeaders"] = hs
	}
	return out
}

// systemTime renders t as a SystemTime extended property value.
func systemTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

func recipient(a *mail.Address) map[string]any {
	ea := map[string]string{"address": a.Address}
	if a.Name != "" {
		ea["name"] = a.Name
	}
	return map[string]any{"emailAddress": ea}
}

// importance maps Importance (RFC 2156) or X-Priority to Graph's
// importance; "" when neither says.
func importance(h interface{ Get(string) string }) string {
	imp := strings.TrimSpace(h.Get("Importance"))
	for _, level := range []string{"high", "low", "normal"} {
		if strings.EqualFold(imp, level) {
			return level
		}
	}
	if p := strings.TrimSpace(h.Get("X-Priority")); p != "" {
		switch p[0] {
		case '1', '2':
			return "high"
		case '4', '5':
			return "low"
		}
	}
	return ""
}

// xHeaders returns the header fields that Graph lets a create carry as
// internetMessageHeaders: "x-" headers only
// (https://learn.microsoft.com/graph/api/resources/message, "Add custom
// headers only when creating a message, and name them starting with
// 'x-'"), without Exchange's own reserved prefixes (MS-OXCMAIL 2.1.3.4).
func xHeaders(h parsedHeader) []map[string]string {
	var out []map[string]string
	fields := h.Fields()
	for fields.Next() {
		k := fields.Key()
		if !hasPrefixFold(k, "x-") || hasPrefixFold(k, "x-microsoft-exchange-") ||
			hasPrefixFold(k, "x-ms-exchange-organization-") {
			continue
		}
		out = append(out, map[string]string{"name": k, "value": fields.Value()})
	}
	return out
}

// hasPrefixFold reports whether s begins with prefix, compared
// case-insensitively.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// fileAttachment returns the JSON of a fileAttachment
// (https://learn.microsoft.com/graph/api/resources/fileattachment).
func fileAttachment(a *mimeAttachment, content []byte) map[string]any {
	out := map[string]any{
		"@odata.type":  "#microsoft.graph.fileAttachment",
		"name":         a.name,
		"contentType":  a.contentType,
		"contentBytes": base64.StdEncoding.EncodeToString(content),
		"isInline":     a.inline,
	}
	if a.contentID != "" {
		out["contentId"] = a.contentID
	}
	return out
}

func jsonSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}
