package exchange

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

const (
	// minUploadSession is the smallest attachment an upload session
	// takes: "between 3 MB and 150 MB"
	// (https://learn.microsoft.com/graph/api/attachment-createuploadsession).
	minUploadSession = 3 << 20
	// uploadChunk is the size of an upload session's PUTs: at most 4 MB
	// and a multiple of 320 KiB
	// (https://learn.microsoft.com/graph/outlook-large-attachments).
	uploadChunk = 12 * 320 << 10
)

// addAttachment adds a to message msgID: with POST .../attachments when
// its base64 fits in one request
// (https://learn.microsoft.com/graph/api/message-post-attachments), else
// through an upload session. alike is the number of attachments with a's
// name and inline state that this Put already gave the message.
//
// The POST is guarded as the creating POST of a message is (see
// retryTransport): when its answer is lost, the message's attachments are
// listed (attachmentArrived) before it is sent again, so that a lost
// answer does not make a second copy of the attachment. An upload session
// needs no guard: its attachment exists only once all its bytes are in,
// and a session whose answer was lost is left to expire (but see
// uploadAttachment for the answer to its last range).
func (mb *Mailbox) addAttachment(ctx context.Context, msgID string, p *parsedMessage, a *mimeAttachment, alike int) error {
	if base64.StdEncoding.EncodedLen(int(a.size))+1024 <= maxRequest || a.size < minUploadSession {
		b, err := p.content(a)
		if err != nil {
			return err
		}
		guard := func(ctx context.Context) (string, error) {
			return mb.attachmentArrived(ctx, msgID, a, alike)
		}
		err = mb.send(mb.withGuard(ctx, guard), http.MethodPost, messagePath+"/attachments",
			map[string]string{"id": msgID}, fileAttachment(a, b), nil)
		var ac *alreadyCreatedError
		if errors.As(err, &ac) {
			return nil
		}
		return err
	}
	return mb.uploadAttachment(ctx, msgID, p, a, alike)
}

// attachmentArrived lists the attachments of message msgID, by name, size
// and inline state, with GET /users/{id}/messages/{id}/attachments?$select=name,size,isInline
// (https://learn.microsoft.com/graph/api/message-list-attachments),
// following @odata.nextLink, and returns the id of one that a lost POST of
// a made, or "". It counts those with a's name and inline state whose size
// is at least a's: Graph's size of a file attachment is not that of its
// bytes alone, and can be larger
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/9796).
// A lost POST made one when there are more of them than the alike ones
// this Put added before it: an attachment is never taken for another of
// the same name, so none is left out. What is left is a second copy of
// one whose lost POST did arrive, when an attachment of the same name
// sent before it is smaller.
func (mb *Mailbox) attachmentArrived(ctx context.Context, msgID string, a *mimeAttachment, alike int) (string, error) {
	atts := mb.c.graph.Users().ByUserId(mb.user).Messages().ByMessageId(msgID).Attachments()
	resp, err := atts.Get(ctx, &users.ItemMessagesItemAttachmentsRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.ItemMessagesItemAttachmentsRequestBuilderGetQueryParameters{
			Select: []string{"id", "name", "size", "isInline"},
		},
	})
	n, found := 0, ""
	for {
		if err != nil {
			return "", err
		}
		if resp == nil {
			break
		}
		for _, at := range resp.GetValue() {
			if at == nil || at.GetId() == nil || at.GetName() == nil || *at.GetName() != a.name {
				continue
			}
			inline := at.GetIsInline() != nil && *at.GetIsInline()
			if inline != a.inline || at.GetSize() == nil || int64(*at.GetSize()) < a.size {
				continue
			}
			n++
			found = *at.GetId()
		}
		next := resp.GetOdataNextLink()
		if next == nil || *next == "" {
			break
		}
		resp, err = atts.WithUrl(*next).Get(ctx, nil)
	}
	if n > alike {
		return found, nil
	}
	return "", nil
}

// uploadAttachment uploads a through an upload session
// (https://learn.microsoft.com/graph/api/attachment-createuploadsession,
// https://learn.microsoft.com/graph/outlook-large-attachments): POST
// createUploadSession with the AttachmentItem, then PUT the bytes in
// order, uploadChunk at a time, to the uploadUrl, without an
// Authorization header (the URL is pre-authenticated).
//
// The last range completes the attachment and ends the session, so when
// its answer is lost (a dropped connection), the retry finds the session
// gone (404) although the attachment is there: a 404 to the last range
// is answered by looking for the attachment (attachmentArrived, alike as
// for addAttachment) before it counts as a failure.
func (mb *Mailbox) uploadAttachment(ctx context.Context, msgID string, p *parsedMessage, a *mimeAttachment, alike int) error {
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
	if err := mb.send(ctx, http.MethodPost, messagePath+"/attachments/createUploadSession",
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
		var ge *GraphError
		if err != nil && off+n == a.size && errors.As(err, &ge) && ge.StatusCode == http.StatusNotFound {
			if id, aerr := mb.attachmentArrived(ctx, msgID, a, alike); aerr == nil && id != "" {
				return nil
			}
		}
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
		return 0, redactUploadURL(err)
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
		return 0, redactUploadURL(err)
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

// redactUploadURL removes the upload URL from err, a failed request to
// it: the URL is pre-authenticated, so it must appear in no error, log or
// report. The *url.Error stays, so that the failure is classified as
// before (transient, say).
func redactUploadURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: "(upload URL)", Err: ue.Err}
	}
	return err
}

// uploadError turns a failed upload session answer into a GraphError.
func uploadError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return mark(graphError("upload attachment bytes", resp.StatusCode, b))
}
