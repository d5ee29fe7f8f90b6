package exchangetest

import (
	"fmt"
	"net/http"
	"time"
)

// graphError builds Graph's error body:
// {"error":{"code":…,"message":…,"innerError":{"date":…,"request-id":…,"client-request-id":…}}}
// (https://learn.microsoft.com/graph/errors#json-representation).
func graphError(c *call, status int, code, message string) reply {
	inner := map[string]any{
		"date":       time.Now().UTC().Format("2006-01-02T15:04:05"),
		"request-id": c.requestID,
	}
	if id := c.header.Get("client-request-id"); id != "" {
		inner["client-request-id"] = id
	} else {
		inner["client-request-id"] = c.requestID
	}
	r := jsonReply(status, map[string]any{"error": map[string]any{
		"code": code, "message": message, "innerError": inner,
	}})
	r.header.Set("request-id", c.requestID)
	return r
}

// notFound answers 404 ErrorItemNotFound, for a folder, message,
// attachment or upload session that does not exist.
func notFound(c *call) reply {
	return graphError(c, http.StatusNotFound, codeItemNotFound, msgItemNotFound)
}

// methodNotAllowed answers 405 for a method the resource does not take.
// Code and message are the emulator's own: no page is cited for them.
func methodNotAllowed(c *call) reply {
	return graphError(c, http.StatusMethodNotAllowed, "BadRequest", fmt.Sprintf("The HTTP method '%s' is not allowed for this resource.", c.method))
}

// Error codes and messages, each with the page that documents or reports it.
const (
	// https://learn.microsoft.com/graph/resolve-auth-errors
	codeInvalidToken = "InvalidAuthenticationToken"
	// Reported for users without a licensed Exchange Online mailbox
	// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/10481).
	codeMailboxNotEnabled = "MailboxNotEnabledForRESTAPI"
	msgMailboxNotEnabled  = "The mailbox is either inactive, soft-deleted, or is hosted on-premise."
	// Reported, 404, for a user id or UPN that the tenant does not know
	// (https://github.com/microsoftgraph/microsoft-graph-docs/issues/7909,
	// https://github.com/microsoftgraph/microsoft-graph-docs/issues/4097);
	// the message names the user as requested.
	codeInvalidUser = "ErrorInvalidUser"
	msgInvalidUser  = "The requested user '%s' is invalid."
	// The rule is https://learn.microsoft.com/graph/api/resources/message
	// ("Add custom headers only when creating a message, and name them
	// starting with 'x-'"); no Microsoft page names the error, so code,
	// message and status 400 are those that client code quotes from
	// Graph's answer to a Reply-To or In-Reply-To header.
	codeInvalidHeader = "InvalidInternetMessageHeader"
	msgInvalidHeader  = "The internet message header name '%s' should start with 'x-' or 'X-'."
	// https://learn.microsoft.com/graph/outlook-large-attachments#errors:
	// createUploadSession for a file under 3 MB. The page gives no status;
	// 400 is the emulator's choice.
	codeAttachmentTooSmall = "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize"
	msgAttachmentTooSmall  = "Attachment size should not be less than the minimum size of 3 MB; add it with POST .../attachments."
	// 400, reported when attachments take a message past the mailbox's
	// maximum message size, both for POST .../attachments
	// (https://github.com/motze92/office365-mail/issues/39) and during an
	// upload session (https://github.com/microsoftgraph/microsoft-graph-docs/issues/15579).
	codeMessageTooLarge = "ErrorMessageSizeExceeded"
	msgMessageTooLarge  = "The message exceeds the maximum supported size."
	// 401 for a PUT to an upload session that carries a Graph bearer
	// token: the pre-authenticated uploadUrl must be called without an
	// Authorization header (https://learn.microsoft.com/graph/outlook-large-attachments,
	// step 2); Outlook's answer is reported in
	// https://github.com/microsoftgraph/msgraph-sdk-java-core/issues/445.
	codeInvalidAudience = "InvalidAudience"
	msgInvalidAudience  = "The audience claim value is invalid 'aud'."
	// https://learn.microsoft.com/graph/api/resources/mailfolder (EWS ResponseCode
	// ErrorItemNotFound, which Graph passes through for Outlook resources).
	codeItemNotFound = "ErrorItemNotFound"
	msgItemNotFound  = "The specified object was not found in the store."
	// https://learn.microsoft.com/graph/api/mailfolder-post-childfolders
	// (Exchange answers 409 ErrorFolderExists for a duplicate displayName).
	codeFolderExists = "ErrorFolderExists"
	msgFolderExists  = "A folder with the specified name already exists."
	// https://learn.microsoft.com/graph/api/user-post-messages#response
	codeBadBase64 = "ErrorMimeContentInvalidBase64String"
	msgBadBase64  = "Invalid base64 string for MIME content."
	// https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode
	// (ErrorMimeContentInvalid: "the MIME content is not valid").
	codeMimeInvalid = "ErrorMimeContentInvalid"
	msgMimeInvalid  = "The MIME content is not valid."
	// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6596 (403).
	codeQuota = "ErrorQuotaExceeded"
	msgQuota  = "Mailbox has exceeded maximum mailbox size."
	// https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits
	codeThrottled = "ApplicationThrottled"
	// https://learn.microsoft.com/graph/errors lists 413 without a code;
	// the code below is the emulator's choice.
	codeTooLarge = "RequestEntityTooLarge"
	msgTooLarge  = "The size of the request exceeds the maximum limit."
)
