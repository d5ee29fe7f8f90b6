package exchangetest

import (
	"encoding/json"
	"net/http"
	"strings"
)

// This file holds what a PATCH of a message may change, and what Graph
// answers when it changes what it may not (see patchMessage).

// Graph's answers to a PATCH that sets what it may not set. Both use EWS's
// ErrorInvalidPropertySet, whose text is "Set action is invalid for
// property." (https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode).
const (
	codeInvalidPropertySet = "ErrorInvalidPropertySet"
	msgInvalidPropertySet  = "Set action is invalid for property."
	// Graph's text for from on a message that is not a draft (reported
	// in https://github.com/microsoftgraph/microsoft-graph-docs/issues/17008).
	msgNotDraft = "Message is not draft."
)

// readOnlyMessageProps are the message's properties that no PATCH sets:
// those of the message resource
// (https://learn.microsoft.com/graph/api/resources/message#properties)
// that the update page does not list
// (https://learn.microsoft.com/graph/api/message-update). A PATCH that
// carries one answers 400 ErrorInvalidPropertySet "Set action is invalid
// for property.": Graph so answers a PATCH of a message as it was read
// back, whole (https://github.com/microsoftgraph/microsoft-graph-docs/issues/6439),
// while one carrying only id and @odata.etag besides what it changes
// succeeds (https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2408).
// Which of these properties Graph refuses is not reported property by
// property; the emulator refuses each, and takes id and the @odata
// annotations without effect.
var readOnlyMessageProps = []string{
	"bodyPreview", "changeKey", "conversationId", "conversationIndex",
	"createdDateTime", "hasAttachments", "isDraft", "lastModifiedDateTime",
	"parentFolderId", "receivedDateTime", "sentDateTime", "uniqueBody", "webLink",
}

// draftOnlyMessageProps are the properties a PATCH changes on a draft
// only; on a message that is not a draft, Graph:
//
//   - ignores subject and body, 200 all the same: "Updatable only if
//     isDraft = true" (https://learn.microsoft.com/graph/api/message-update),
//     and a PATCH of them on a message with isDraft false is reported to
//     answer 200 and change nothing
//     (https://github.com/microsoftgraph/microsoft-graph-docs/issues/21616;
//     earlier reports, https://github.com/microsoftgraph/microsoft-graph-docs/issues/11012
//     and /11542, saw them change, and Microsoft answered that this would
//     be disallowed);
//   - refuses from with 400 ErrorInvalidPropertySet "Message is not
//     draft." (https://github.com/microsoftgraph/microsoft-graph-docs/issues/17008);
//   - refuses internetMessageId ("Updatable only if isDraft = true") with
//     400 ErrorInvalidPropertySet "Set action is invalid for property.",
//     the answer reported to a PATCH that carried the internetMessageId of
//     an Inbox message (https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2408);
//   - refuses replyTo ("Updatable only if isDraft = true") and sender
//     (updatable "when sending a message") as it refuses from: the
//     emulator's own rule, as no answer is reported for them.
//
// toRecipients, ccRecipients and bccRecipients are updatable on any
// message, as the v1.0 update page lists them without a condition.
var draftOnlyMessageProps = map[string]string{
	"from": msgNotDraft, "sender": msgNotDraft, "replyTo": msgNotDraft,
	"internetMessageId": msgInvalidPropertySet,
}

// patchKeys returns the names of the properties a PATCH body carries, as
// given.
func patchKeys(c *call) (map[string]json.RawMessage, *reply) {
	var raw map[string]json.RawMessage
	if r := readJSON(c, &raw); r != nil {
		return nil, r
	}
	return raw, nil
}

// hasKey reports whether keys holds name, matched case-insensitively as
// the emulator decodes bodies.
func hasKey(keys map[string]json.RawMessage, name string) bool {
	for k := range keys {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// checkReadOnly answers 400 ErrorInvalidPropertySet when keys holds a
// property of readOnlyMessageProps.
func checkReadOnly(c *call, keys map[string]json.RawMessage) *reply {
	for _, p := range readOnlyMessageProps {
		if hasKey(keys, p) {
			return graphError(c, http.StatusBadRequest, codeInvalidPropertySet, msgInvalidPropertySet).ref()
		}
	}
	return nil
}

// applyAddressing applies what a PATCH carries of subject, body, from,
// sender, toRecipients, ccRecipients, bccRecipients, replyTo and
// internetMessageId to m, by the rules of draftOnlyMessageProps. A
// property given as null clears it.
func applyAddressing(c *call, m *message, in *messageInput, keys map[string]json.RawMessage) *reply {
	if !m.isDraft {
		for _, p := range []string{"from", "sender", "replyTo", "internetMessageId"} {
			if hasKey(keys, p) {
				return graphError(c, http.StatusBadRequest, codeInvalidPropertySet, draftOnlyMessageProps[p]).ref()
			}
		}
	}
	for _, p := range []struct {
		name string
		dst  *any
		v    any
	}{
		{"toRecipients", &m.to, in.ToRecipients}, {"ccRecipients", &m.cc, in.CcRecipients},
		{"bccRecipients", &m.bcc, in.BccRecipients},
		{"from", &m.from, in.From}, {"sender", &m.sender, in.Sender}, {"replyTo", &m.replyTo, in.ReplyTo},
	} {
		if hasKey(keys, p.name) {
			*p.dst = p.v
		}
	}
	if !m.isDraft {
		return nil // subject and body: ignored
	}
	if in.Subject != nil {
		m.subject = *in.Subject
	}
	if in.Body != nil {
		m.body = in.Body
	}
	if in.InternetMessageID != nil && *in.InternetMessageID != "" {
		m.internetMessageID = *in.InternetMessageID
	}
	return nil
}
