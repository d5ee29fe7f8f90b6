package exchangetest

import (
	"net/http"
	"strings"
)

// This file holds the conditional requests on messages: If-Match on PATCH
// and DELETE.

// Graph's answer to an update whose change key is not the item's current
// one: 412 Precondition Failed, ErrorIrresolvableConflict, with this text
// (reported for message PATCH in
// https://github.com/mguessan/davmail/issues/491 and
// https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/1201; the
// same EWS code and text in
// https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/7934).
const (
	codeIrresolvableConflict = "ErrorIrresolvableConflict"
	msgIrresolvableConflict  = "The send or update operation could not be performed because the change key passed in the request does not match the current change key for the item."
)

// checkIfMatch answers 412 ErrorIrresolvableConflict when the request
// carries an If-Match header that does not name m's current version, and
// nil otherwise (no header, "*", or a list that holds the current ETag;
// RFC 9110 section 13.1.1). Graph's ETags are weak (W/"…"), so entity tags
// compare by their opaque part: W/"k", "k" and the bare change key k all
// name the version whose changeKey is k. A header that names no version
// (empty, or not an entity tag) does not match.
func checkIfMatch(c *call, m *message) *reply {
	vals := c.header.Values("If-Match")
	if len(vals) == 0 {
		return nil
	}
	key := m.changeKey()
	for _, v := range vals {
		for _, tag := range strings.Split(v, ",") {
			tag = strings.TrimSpace(tag)
			if tag == "*" {
				return nil
			}
			tag = strings.TrimPrefix(tag, "W/")
			if len(tag) >= 2 && tag[0] == '"' && tag[len(tag)-1] == '"' {
				tag = tag[1 : len(tag)-1]
			}
			if tag != "" && tag == key {
				return nil
			}
		}
	}
	return graphError(c, http.StatusPreconditionFailed, codeIrresolvableConflict, msgIrresolvableConflict).ref()
}
