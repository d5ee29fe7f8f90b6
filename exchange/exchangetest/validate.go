package exchangetest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/mail"
	"regexp"
	"strconv"
	"strings"
)

// This file holds the rules by which the emulator refuses what a request
// carries: JSON and MIME bodies, folder names, attachments, upload ranges
// and message sizes. Each names the page it follows or says that it is the
// emulator's own. The refusals of a request as a whole are where the
// request meets them: the token and the request size in handler.go, the
// route and method in route.go, a full mailbox in faults.go, the budgets
// in throttle.go, an extended property value in extprops.go.

// readJSON decodes a JSON request body into v. Invalid JSON answers 400
// RequestBodyRead "Invalid JSON in the request body: …" (the emulator's
// own answer).
func readJSON(c *call, v any) *reply {
	if err := json.Unmarshal(c.body, v); err != nil {
		return graphError(c, http.StatusBadRequest, "RequestBodyRead", "Invalid JSON in the request body: "+err.Error()).ref()
	}
	return nil
}

// readMIMEBody reads the body of importMime or of a MIME create: base64
// MIME sent as Content-Type text/plain, with no JSON envelope and no
// parameters (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta,
// https://learn.microsoft.com/graph/api/user-post-messages). It returns
// the decoded MIME and its header (parseMIMEHeader), or refuses:
//
//   - another Content-Type: 415 UnsupportedMediaType (the importMime
//     page requires text/plain; code and message are the emulator's own);
//   - a body that is not base64: 400 ErrorMimeContentInvalidBase64String
//     (user-post-messages);
//   - MIME that RejectMIME matches: 400 ErrorMimeContentInvalid (EWS
//     ResponseCode,
//     https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode).
//
// The emulator refuses no MIME on its own. Exchange Online does refuse
// some: ErrorMimeContentInvalid is documented as "the MIME content is
// not valid" and no more, and neither page above says which MIME it
// refuses. An emulator that refused what it guessed (a header line
// without a colon, say, which mail readers show anyway) would be
// stricter than the service in ways no page supports; so every decoded
// body is taken, even one without a header, and tests choose the
// refusals with RejectMIME.
func (s *Server) readMIMEBody(c *call) ([]byte, mail.Header, *reply) {
	if !isContentType(c.header, "text/plain") {
		return nil, nil, graphError(c, http.StatusUnsupportedMediaType, "UnsupportedMediaType", "The Content-Type must be text/plain for MIME content.").ref()
	}
	raw, ok := decodeMIMEBody(c.body)
	if !ok {
		return nil, nil, graphError(c, http.StatusBadRequest, codeBadBase64, msgBadBase64).ref()
	}
	if s.reject != nil && s.reject(raw) {
		return nil, nil, graphError(c, http.StatusBadRequest, codeMimeInvalid, msgMimeInvalid).ref()
	}
	return raw, parseMIMEHeader(raw), nil
}

// readMessageInput decodes a message's JSON (create or PATCH) and checks
// its internet headers and body, returning the error reply if any.
func readMessageInput(c *call) (messageInput, *reply) {
	var in messageInput
	if r := readJSON(c, &in); r != nil {
		return in, r
	}
	if r := checkHeaders(c, in.InternetMessageHeaders); r != nil {
		return in, r
	}
	return in, checkBody(c, in.Body)
}

// checkHeaders applies "Add custom headers only when creating a message,
// and name them starting with 'x-'"
// (https://learn.microsoft.com/graph/api/resources/message): any other
// name answers 400 InvalidInternetMessageHeader.
func checkHeaders(c *call, hs []internetHeader) *reply {
	for _, h := range hs {
		if len(h.Name) < 2 || !strings.EqualFold(h.Name[:2], "x-") {
			return graphError(c, http.StatusBadRequest, codeInvalidHeader, fmt.Sprintf(msgInvalidHeader, h.Name)).ref()
		}
	}
	return nil
}

// The values of the enumerations a message takes: flag.flagStatus
// (https://learn.microsoft.com/graph/api/resources/followupflag),
// importance (https://learn.microsoft.com/graph/api/resources/message),
// inferenceClassification ("focused or other",
// https://learn.microsoft.com/graph/api/resources/message and
// https://learn.microsoft.com/graph/api/message-update) and
// body.contentType (https://learn.microsoft.com/graph/api/resources/itembody).
var (
	flagStatuses             = []string{"notFlagged", "flagged", "complete"}
	importances              = []string{"low", "normal", "high"}
	inferenceClassifications = []string{inferenceFocused, "other"}
	bodyContentTypes         = []string{"text", "html"}
)

// inferenceFocused is the inferenceClassification of a message that no
// request has classified. Microsoft's example answers show a new draft
// as "focused" (https://learn.microsoft.com/graph/api/user-post-messages?view=graph-rest-beta,
// example 1), and delivered and moved messages too
// (https://learn.microsoft.com/graph/api/message-move); no page says how
// Exchange Online classifies an import, and the emulator classifies every
// message "focused" until a create or PATCH says otherwise (its own rule
// for imports).
const inferenceFocused = "focused"

// checkEnum matches v with an enumeration's values case-insensitively
// and returns the value's canonical spelling. Another value answers 400
// RequestBodyRead "Requested value '…' was not found." (the emulator's
// own answer).
func checkEnum(c *call, v string, allowed []string) (string, *reply) {
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a, nil
		}
	}
	return "", graphError(c, http.StatusBadRequest, "RequestBodyRead", fmt.Sprintf("Requested value '%s' was not found.", v)).ref()
}

// checkBody checks an itemBody: contentType is text or html
// (https://learn.microsoft.com/graph/api/resources/itembody), text when
// absent; it stores the canonical spelling.
func checkBody(c *call, body map[string]any) *reply {
	if body == nil {
		return nil
	}
	ct, _ := body["contentType"].(string)
	if ct == "" {
		body["contentType"] = "text"
		return nil
	}
	v, r := checkEnum(c, ct, bodyContentTypes)
	if r != nil {
		return r
	}
	body["contentType"] = v
	return nil
}

// checkFolderName checks the displayName of a new folder under parent. A
// sibling with the same displayName (case-insensitive, as Exchange
// compares folder names) answers 409 ErrorFolderExists
// (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders).
//
// Display names are otherwise taken as they come: no Microsoft page
// documents a length limit, reserved characters or trimming for a
// mailFolder's displayName (user-post-mailfolders and
// mailfolder-post-childfolders list displayName as a plain String), so the
// emulator enforces none. A missing or blank displayName answers 400
// ErrorInvalidRequest; that rule is the emulator's own, as no page says
// what Graph answers. Leads that were not adopted, because they document
// other protocols: Exchange ActiveSync's FolderCreate requires 1 to 256
// characters (MS-ASCMD DisplayName,
// https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-ascmd/ed219381-895c-488c-8492-58954a50ac1b),
// and MAPI forbids [ ] / \ & ~ ? * | < > " ; : + in contact address book
// folder names (PidTagContactAddressBookFolderName,
// https://learn.microsoft.com/office/client-developer/outlook/mapi/pidtagcontactaddressbookfoldername-canonical-property).
func checkFolderName(c *call, mb *mailbox, parent string, name *string) *reply {
	if name == nil || strings.TrimSpace(*name) == "" {
		return graphError(c, http.StatusBadRequest, "ErrorInvalidRequest", "The displayName property is required.").ref()
	}
	for _, f := range mb.folders {
		if f.parentID == parent && strings.EqualFold(f.displayName, *name) {
			return graphError(c, http.StatusConflict, codeFolderExists, msgFolderExists).ref()
		}
	}
	return nil
}

// checkFileAttachment checks an attachmentInput and returns its decoded
// content: "@odata.type": "#microsoft.graph.fileAttachment" and the
// required name and contentBytes, base64
// (https://learn.microsoft.com/graph/api/resources/fileattachment).
// itemAttachment and referenceAttachment are not emulated. Each refusal
// answers 400 ErrorInvalidRequest; the code is the emulator's: no page
// names it.
func checkFileAttachment(c *call, in attachmentInput) ([]byte, *reply) {
	fail := func(msg string) ([]byte, *reply) {
		return nil, graphError(c, http.StatusBadRequest, "ErrorInvalidRequest", msg).ref()
	}
	if !strings.EqualFold(strings.TrimPrefix(in.ODataType, "#"), "microsoft.graph.fileAttachment") {
		return fail("Only #microsoft.graph.fileAttachment is emulated; set @odata.type.")
	}
	if in.Name == nil || *in.Name == "" || in.ContentBytes == nil {
		return fail("A file attachment needs name and contentBytes.")
	}
	content, err := base64.StdEncoding.DecodeString(*in.ContentBytes)
	if err != nil {
		return fail("contentBytes is not valid base64.")
	}
	return content, nil
}

// checkMessageSize refuses n more bytes for m when they take it past
// Options.MaxMessageBytes: 400 ErrorMessageSizeExceeded, as reported for
// POST .../attachments (https://github.com/motze92/office365-mail/issues/39)
// and during an upload session
// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/15579).
func (s *Server) checkMessageSize(c *call, m *message, n int64) *reply {
	if m.size()+n > s.opts.MaxMessageBytes {
		return graphError(c, http.StatusBadRequest, codeMessageTooLarge, msgMessageTooLarge).ref()
	}
	return nil
}

// minUploadSessionSize is the smallest file an upload session takes:
// "Use this approach to attach a file if the file size is between 3 MB and
// 150 MB" (https://learn.microsoft.com/graph/api/attachment-createuploadsession);
// smaller ones answer ErrorAttachmentSizeShouldNotBeLessThanMinimumSize
// (https://learn.microsoft.com/graph/outlook-large-attachments#errors).
// The emulator reads "3 MB" as 3 MiB, as the 4 MB request limit is read
// as 4 MiB.
const minUploadSessionSize = 3 * 1024 * 1024

// checkUploadItem checks the AttachmentItem of createUploadSession
// (https://learn.microsoft.com/graph/api/resources/attachmentitem): name,
// size and attachmentType are required, and only "file" is emulated,
// else 400 ErrorInvalidRequest (the emulator's code); a size under
// minUploadSessionSize answers 400
// ErrorAttachmentSizeShouldNotBeLessThanMinimumSize.
func checkUploadItem(c *call, it *attachmentItem) *reply {
	if it == nil || it.Name == "" || it.Size == nil || !strings.EqualFold(it.AttachmentType, "file") {
		return graphError(c, http.StatusBadRequest, "ErrorInvalidRequest", "AttachmentItem needs attachmentType \"file\", name and size.").ref()
	}
	if *it.Size < minUploadSessionSize {
		return graphError(c, http.StatusBadRequest, codeAttachmentTooSmall, msgAttachmentTooSmall).ref()
	}
	return nil
}

var contentRangeRE = regexp.MustCompile(`^bytes (\d+)-(\d+)/(\d+)$`)

// checkRange checks the Content-Range of a PUT to an upload session that
// has received next of its size bytes
// (https://learn.microsoft.com/graph/outlook-large-attachments): bytes
// come in order ("You must upload bytes in a file in order"), the total
// is the size given to createUploadSession, and the body is exactly the
// range. A missing or malformed Content-Range answers 400 InvalidRange; a
// range that is not the next expected one answers 416 Requested Range Not
// Satisfiable with code InvalidRange (the Outlook pages name no error;
// 416 is what OneDrive's upload sessions answer,
// https://learn.microsoft.com/graph/api/driveitem-createuploadsession).
func checkRange(c *call, next, size int64) *reply {
	sm := contentRangeRE.FindStringSubmatch(strings.TrimSpace(c.header.Get("Content-Range")))
	if sm == nil {
		return graphError(c, http.StatusBadRequest, "InvalidRange", "The Content-Range header is missing or malformed; send bytes {start}-{end}/{total}.").ref()
	}
	start, _ := strconv.ParseInt(sm[1], 10, 64)
	end, _ := strconv.ParseInt(sm[2], 10, 64)
	total, _ := strconv.ParseInt(sm[3], 10, 64)
	if total != size || start != next || end < start || end >= total || end-start+1 != int64(len(c.body)) {
		return graphError(c, http.StatusRequestedRangeNotSatisfiable, "InvalidRange",
			fmt.Sprintf("The uploaded fragment does not match the next expected range '%d' of %d bytes.", next, size)).ref()
	}
	return nil
}
