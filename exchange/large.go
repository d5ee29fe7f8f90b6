package exchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"

	abstractions "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/mailferry/mailferry/migrate"
)

// MaxMessageSize is the largest message Put takes, in bytes of MIME:
// Exchange Online's largest configurable message size, 150 MB
// (https://learn.microsoft.com/graph/outlook-large-attachments). The
// mailbox's own limit (35 MB by default) may be lower; Graph then refuses
// the item, an error matching migrate.ErrItem.
const MaxMessageSize = 150 << 20

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

const (
	// maxRequest is Graph's request size limit, 4 MB
	// (https://learn.microsoft.com/graph/api/user-post-messages), less
	// room for what this package does not count exactly.
	maxRequest = 4<<20 - 16<<10
	// minUploadSession is the smallest attachment an upload session
	// takes: "between 3 MB and 150 MB"
	// (https://learn.microsoft.com/graph/api/attachment-createuploadsession).
	minUploadSession = 3 << 20
	// uploadChunk is the size of an upload session's PUTs: at most 4 MB
	// and a multiple of 320 KiB
	// (https://learn.microsoft.com/graph/outlook-large-attachments).
	uploadChunk = 12 * 320 << 10
)

// putJSON creates m in folderID from the fields of its MIME, read from
// body, with POST /users/{id}/mailFolders/{id}/messages and JSON
// (https://learn.microsoft.com/graph/api/user-post-messages), then adds
// the attachments that did not fit in that request. See Put.
func (mb *Mailbox) putJSON(ctx context.Context, op, folderID string, m *migrate.Message, body io.Reader) (string, error) {
	p, err := parseMIME(body)
	if err != nil {
		if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return "", fmt.Errorf("exchange: %s: %w", op, err)
		}
		return "", migrate.ItemError(fmt.Errorf("exchange: %s: parse MIME: %w", op, err))
	}
	defer p.close()

	create := createJSON(p, m)
	payloadSize := jsonSize(create)
	var later []*mimeAttachment // attachments sent after the create
	var inline []map[string]any
	for _, a := range p.atts {
		need := base64.StdEncoding.EncodedLen(int(a.size)) + len(a.name) + len(a.contentType) + len(a.contentID) + 200
		if len(later) == 0 && payloadSize+need <= maxRequest {
			b, err := p.content(a)
			if err != nil {
				return "", fmt.Errorf("exchange: %s: read spooled attachment: %w", op, err)
			}
			inline = append(inline, fileAttachment(a, b))
			payloadSize += need
			continue
		}
		later = append(later, a)
	}
	if len(inline) > 0 {
		create["attachments"] = inline
	}
	if payloadSize > maxRequest {
		return "", migrate.ItemError(fmt.Errorf("exchange: %s: the message's fields and body take more than Graph's 4 MB request", op))
	}

	sid := m.ID.String()
	stamp := WatermarkProperty
	if len(later) > 0 {
		// Built in several requests: marked pending until complete.
		stamp = PendingProperty
		if id, err := mb.clearPending(ctx, folderID, m.ID); err != nil || id != "" {
			return id, err
		}
	}
	props := create["singleValueExtendedProperties"].([]map[string]string)
	create["singleValueExtendedProperties"] = append(props, map[string]string{"id": stamp, "value": sid})

	guard := func(ctx context.Context) (string, error) {
		ids, err := mb.findMessages(ctx, folderID, stampFilter(stamp, m.ID), 1, 1)
		if err != nil || len(ids) == 0 {
			return "", err
		}
		return ids[0], nil
	}
	var created struct {
		ID string `json:"id"`
	}
	err = mb.sendJSON(mb.withGuard(ctx, guard), http.MethodPost, "{+graphroot}/v1.0/users/{user}/mailFolders/{folder}/messages",
		map[string]string{"folder": folderID}, create, &created)
	var ac *alreadyCreatedError
	switch {
	case errors.As(err, &ac):
		created.ID = ac.id
	case err != nil:
		return "", classify(op+": create from JSON", err)
	case created.ID == "":
		return "", fmt.Errorf("exchange: %s: create from JSON: no message id in the answer", op)
	}
	if len(later) == 0 {
		return created.ID, nil
	}
	for _, a := range later {
		if err := mb.addAttachment(ctx, created.ID, p, a); err != nil {
			mb.undoImport(ctx, created.ID)
			return "", classify(fmt.Sprintf("%s: attachment %q (%d bytes)", op, a.name, a.size), err)
		}
	}
	patch := map[string]any{"singleValueExtendedProperties": []map[string]string{{"id": WatermarkProperty, "value": sid}}}
	if err := mb.sendJSON(ctx, http.MethodPatch, "{+graphroot}/v1.0/users/{user}/messages/{id}",
		map[string]string{"id": created.ID}, patch, nil); err != nil {
		mb.undoImport(ctx, created.ID)
		return "", classify(op+": set watermark", err)
	}
	return created.ID, nil
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
		mb.undoImport(ctx, pid)
	}
	return "", nil
}

// listStamped returns the first page (findPageSize) of the messages of
// folderID that match filter, with their id, createdDateTime and
// WatermarkProperty (expanded: present only on stamped items). The error
// is the SDK's, unclassified.
func (mb *Mailbox) listStamped(ctx context.Context, folderID, filter string) ([]models.Messageable, error) {
	top := int32(findPageSize)
	resp, err := mb.c.graph.Users().ByUserId(mb.user).MailFolders().ByMailFolderId(folderID).Messages().Get(ctx,
		&users.ItemMailFoldersItemMessagesRequestBuilderGetRequestConfiguration{
			QueryParameters: &users.ItemMailFoldersItemMessagesRequestBuilderGetQueryParameters{
				Filter: &filter,
				Select: []string{"id", "createdDateTime"},
				Expand: []string{"singleValueExtendedProperties($filter=id eq " + quote(WatermarkProperty) + ")"},
				Top:    &top,
			},
		})
	if err != nil || resp == nil {
		return nil, err
	}
	var out []models.Messageable
	for _, m := range resp.GetValue() {
		if m != nil {
			out = append(out, m)
		}
	}
	return out, nil
}

func stampFilter(prop string, id migrate.SourceID) string {
	return fmt.Sprintf("singleValueExtendedProperties/Any(ep: ep/id eq %s and ep/value eq %s)", quote(prop), quote(id.String()))
}

// createJSON returns the JSON create of message m from its parsed MIME
// (https://learn.microsoft.com/graph/api/resources/message): the
// addresses, subject, Message-ID, importance, main body, x- headers,
// flags and categories, and the MAPI properties that only creation can
// set: PidTagMessageFlags (read or unread, non-draft, unless \Draft),
// PidTagMessageDeliveryTime (INTERNALDATE) and PidTagClientSubmitTime
// (the Date header), plus PidTagLastVerbExecuted for \Answered.
func createJSON(p *parsedMessage, m *migrate.Message) map[string]any {
	h := p.header
	st := flagsOf(m.Flags)
	out := map[string]any{
		"subject":    decoded(h, "Subject"),
		"isRead":     st.read,
		"flag":       map[string]any{"flagStatus": st.flagStatus},
		"categories": st.categories,
	}
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
	if id := strings.TrimSpace(h.Get("Message-Id")); id != "" {
		out["internetMessageId"] = id
	}
	if imp := importance(&h); imp != "" {
		out["importance"] = imp
	}
	if hs := xHeaders(&h); len(hs) > 0 {
		out["internetMessageHeaders"] = hs
	}
	var props []map[string]string
	if !hasFlag(m.Flags, migrate.FlagDraft) {
		flags := "0" // non-draft (no MSGFLAG_UNSENT), unread
		if st.read {
			flags = "1" // MSGFLAG_READ
		}
		props = append(props, map[string]string{"id": messageFlagsProperty, "value": flags})
		if !m.InternalDate.IsZero() {
			props = append(props, map[string]string{"id": deliveryTimeProperty, "value": systemTime(m.InternalDate)})
		}
	}
	if t, ok := messageDate(h); ok {
		props = append(props, map[string]string{"id": submitTimeProperty, "value": systemTime(t)})
	}
	if st.answered {
		props = append(props, map[string]string{"id": LastVerbProperty, "value": lastVerbReply})
	}
	out["singleValueExtendedProperties"] = props
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
	switch strings.ToLower(strings.TrimSpace(h.Get("Importance"))) {
	case "high":
		return "high"
	case "low":
		return "low"
	case "normal":
		return "normal"
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
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-") || strings.HasPrefix(lk, "x-microsoft-exchange-") ||
			strings.HasPrefix(lk, "x-ms-exchange-organization-") {
			continue
		}
		out = append(out, map[string]string{"name": k, "value": fields.Value()})
	}
	return out
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

// addAttachment adds a to message msgID: with POST .../attachments when
// its base64 fits in one request
// (https://learn.microsoft.com/graph/api/message-post-attachments), else
// through an upload session.
func (mb *Mailbox) addAttachment(ctx context.Context, msgID string, p *parsedMessage, a *mimeAttachment) error {
	if base64.StdEncoding.EncodedLen(int(a.size))+1024 <= maxRequest || a.size < minUploadSession {
		b, err := p.content(a)
		if err != nil {
			return err
		}
		return mb.sendJSON(ctx, http.MethodPost, "{+graphroot}/v1.0/users/{user}/messages/{id}/attachments",
			map[string]string{"id": msgID}, fileAttachment(a, b), nil)
	}
	return mb.uploadAttachment(ctx, msgID, p, a)
}

// uploadAttachment uploads a through an upload session
// (https://learn.microsoft.com/graph/api/attachment-createuploadsession,
// https://learn.microsoft.com/graph/outlook-large-attachments): POST
// createUploadSession with the AttachmentItem, then PUT the bytes in
// order, uploadChunk at a time, to the uploadUrl, without an
// Authorization header (the URL is pre-authenticated).
func (mb *Mailbox) uploadAttachment(ctx context.Context, msgID string, p *parsedMessage, a *mimeAttachment) error {
	item := map[string]any{
		"attachmentType": "file",
		"name":           a.name,
		"size":           a.size,
		"contentType":    a.contentType,
		"isInline":       a.inline,
	}
	if a.contentID != "" {
		item["contentId"] = a.contentID
	}
	var sess struct {
		UploadURL string `json:"uploadUrl"`
	}
	if err := mb.sendJSON(ctx, http.MethodPost, "{+graphroot}/v1.0/users/{user}/messages/{id}/attachments/createUploadSession",
		map[string]string{"id": msgID}, map[string]any{"AttachmentItem": item}, &sess); err != nil {
		return err
	}
	if sess.UploadURL == "" {
		return errors.New("createUploadSession: no uploadUrl in the answer")
	}
	src := p.open(a)
	buf := make([]byte, min(int64(uploadChunk), a.size))
	for off := int64(0); off < a.size; {
		n := min(int64(len(buf)), a.size-off)
		if _, err := src.ReadAt(buf[:n], off); err != nil && err != io.EOF {
			return fmt.Errorf("read spooled attachment: %w", err)
		}
		next, err := mb.putChunk(ctx, sess.UploadURL, buf[:n], off, a.size)
		if err != nil {
			return err
		}
		off = next
	}
	return nil
}

// putChunk sends bytes [off, off+len(chunk)) of total to an upload URL and
// returns the offset to send next. A 416 (a retried chunk that had
// arrived) is answered by asking the session where it stands.
func (mb *Mailbox) putChunk(ctx context.Context, uploadURL string, chunk []byte, off, total int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, uploadURL, bytes.NewReader(chunk))
	if err != nil {
		return 0, err
	}
	req.ContentLength = int64(len(chunk))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, off+int64(len(chunk))-1, total))
	resp, err := mb.c.upload.Do(req)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		return off + int64(len(chunk)), nil
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		return mb.sessionOffset(ctx, uploadURL, off)
	}
	return 0, uploadError(resp)
}

// sessionOffset asks an upload session which byte it expects next.
func (mb *Mailbox) sessionOffset(ctx context.Context, uploadURL string, was int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uploadURL, nil)
	if err != nil {
		return 0, err
	}
	resp, err := mb.c.upload.Do(req)
	if err != nil {
		return 0, err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return 0, uploadError(resp)
	}
	var st struct {
		Next []string `json:"nextExpectedRanges"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil || len(st.Next) == 0 {
		return 0, fmt.Errorf("upload session: cannot tell where to resume after byte %d", was)
	}
	start, _, _ := strings.Cut(st.Next[0], "-")
	next, err := strconv.ParseInt(start, 10, 64)
	if err != nil || next < was {
		return 0, fmt.Errorf("upload session: expects %q after byte %d", st.Next[0], was)
	}
	return next, nil
}

// uploadError turns a failed upload session answer into a GraphError.
func uploadError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ge := batchError("upload attachment bytes", batchAnswer{Status: resp.StatusCode, Body: b})
	return mark(ge)
}

// sendJSON sends a request with a JSON body (nil: none) through the
// request adapter and decodes the JSON answer into out (nil: ignored).
// The template's {user} is the Mailbox's user; params fill the others.
// The error is the SDK's, unclassified.
func (mb *Mailbox) sendJSON(ctx context.Context, method, template string, params map[string]string, in, out any) error {
	ri := abstractions.NewRequestInformation()
	switch method {
	case http.MethodGet:
		ri.Method = abstractions.GET
	case http.MethodPost:
		ri.Method = abstractions.POST
	case http.MethodPatch:
		ri.Method = abstractions.PATCH
	case http.MethodDelete:
		ri.Method = abstractions.DELETE
	default:
		return fmt.Errorf("sendJSON: method %s", method)
	}
	ri.UrlTemplate = template
	ri.PathParameters["graphroot"] = mb.c.baseURL
	ri.PathParameters["user"] = mb.user
	for k, v := range params {
		ri.PathParameters[k] = v
	}
	ri.Headers.TryAdd("Accept", "application/json")
	if in != nil {
		payload, err := json.Marshal(in)
		if err != nil {
			return err
		}
		ri.SetStreamContentAndContentType(payload, "application/json")
	}
	res, err := mb.c.adapter.SendPrimitive(ctx, ri, "[]byte", errorMapping)
	if err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	raw, _ := res.([]byte)
	if len(raw) == 0 {
		return nil
	}
	return json.Unmarshal(raw, out)
}
