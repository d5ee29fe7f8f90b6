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
// through an upload session.
func (mb *Mailbox) addAttachment(ctx context.Context, msgID string, p *parsedMessage, a *mimeAttachment) error {
	if base64.StdEncoding.EncodedLen(int(a.size))+1024 <= maxRequest || a.size < minUploadSession {
		b, err := p.content(a)
		if err != nil {
			return err
		}
		return mb.send(ctx, http.MethodPost, messagePath+"/attachments",
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
