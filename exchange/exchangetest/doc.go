// Package exchangetest is a Microsoft Graph mail emulator: an httptest
// server that behaves like Exchange Online's documented Graph mail API, so
// that a real Graph client (msgraph-sdk-go, or plain net/http) can be
// tested over real HTTP without a tenant. It uses only the standard
// library.
//
//	s := exchangetest.NewServer(nil)
//	defer s.Close()
//	s.AddMailbox("alice@contoso.com")
//	// point the client at s.URL()+"/v1.0" (and "/beta" for importMime),
//	// with any bearer token and s.Client()
//	msgs := s.Messages("alice@contoso.com")
//
// /v1.0 and /beta serve the same API, except importMime, which is beta
// only (see route.go for each route's documented versions). {user} is an
// id or UPN added with AddMailbox (case-insensitive); a folder {id} is a
// folder id or a well-known name. The server inspects (Folders, Messages,
// Message, with each message's Attachments), injects faults (FailNext,
// ResetNext, FailNextUpload, RejectMIME, SetQuotaExceeded,
// AddUserWithoutMailbox) and counts (Stats, Budget, TimeScale).
//
// # Endpoints
//
//	GET   /users/{user}/mailFolders                      top-level folders (under msgfolderroot)
//	POST  /users/{user}/mailFolders                      create a top-level folder
//	GET   /users/{user}/mailFolders/{id}                 a folder (also .../childFolders/{id})
//	GET   /users/{user}/mailFolders/{id}/childFolders    children; $filter, $top, $skip, $count
//	POST  /users/{user}/mailFolders/{id}/childFolders    create a child folder
//	POST  /users/{user}/mailFolders/{id}/importMime      import base64 MIME as a non-draft
//	POST  /users/{user}/mailFolders/{id}/permanentDelete delete a folder, its children and messages
//	GET   /users/{user}[/mailFolders/{id}]/messages      list; $filter, $top, $skip, $select, $expand, $count
//	POST  /users/{user}[/mailFolders/{id}]/messages      create (text/plain MIME or JSON)
//	GET   /users/{user}[/mailFolders/{id}]/messages/{id}          $select, $expand
//	PATCH /users/{user}[/mailFolders/{id}]/messages/{id}
//	DELETE /users/{user}[/mailFolders/{id}]/messages/{id}
//	GET   /users/{user}[/mailFolders/{id}]/messages/{id}/$value   the MIME
//	GET   …/messages/{id}/attachments                    list attachments
//	POST  …/messages/{id}/attachments                    add a fileAttachment (under 3 MB)
//	POST  …/messages/{id}/attachments/createUploadSession   upload session (3 MB to 150 MB)
//	GET   …/messages/{id}/attachments/{id}[/$value]      an attachment, or its raw bytes; $expand=…/item
//	DELETE …/messages/{id}/attachments/{id}
//	PUT, GET, DELETE  {uploadUrl}                        upload a byte range, resume, cancel
//	POST  /$batch                                        JSON batching
//
// # Rules and their sources
//
//   - Every request needs "Authorization: Bearer <token>", else 401
//     InvalidAuthenticationToken "Access token is empty."; Options.Token
//     restricts the accepted token
//     (https://learn.microsoft.com/graph/auth/auth-concepts,
//     https://learn.microsoft.com/graph/resolve-auth-errors).
//   - A user that was never added does not exist: 404 ErrorInvalidUser
//     "The requested user '{user}' is invalid." (reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/7909
//     and /4097). A user added with AddUserWithoutMailbox exists without a
//     (licensed) Exchange Online mailbox: 404 MailboxNotEnabledForRESTAPI
//     "The mailbox is either inactive, soft-deleted, or is hosted
//     on-premise." (https://github.com/microsoftgraph/microsoft-graph-docs/issues/10481).
//     The field also reports 404 ResourceNotFound "Resource could not be
//     discovered." for a user without a mailbox
//     (https://github.com/microsoftgraph/microsoft-graph-docs/issues/4598);
//     the emulator does not answer it, clients should treat it alike.
//   - Requests are limited to 4 MB (Options.MaxRequestBytes) of
//     uncompressed body, else 413
//     (https://learn.microsoft.com/graph/api/user-post-messages,
//     https://learn.microsoft.com/graph/outlook-large-attachments); the
//     error code RequestEntityTooLarge is the emulator's choice, as
//     https://learn.microsoft.com/graph/errors names none. Bodies may be
//     gzip-compressed (Content-Encoding: gzip), as msgraph-sdk-go sends them.
//   - Well-known folder names may stand in for ids: msgfolderroot, inbox,
//     drafts, sentitems, deleteditems, junkemail, archive, outbox,
//     conversationhistory
//     (https://learn.microsoft.com/graph/api/resources/mailfolder).
//   - Creating a folder whose displayName exists under the same parent
//     (case-insensitive) answers 409 ErrorFolderExists
//     (https://learn.microsoft.com/graph/api/mailfolder-post-childfolders);
//     look it up with $filter=displayName eq 'Name' instead
//     (https://learn.microsoft.com/graph/filter-query-parameter).
//   - Folder display names: no Microsoft page documents a length limit,
//     reserved characters or trimming for a mailFolder's displayName, so
//     none is enforced; only a missing or blank displayName is refused
//     (400 ErrorInvalidRequest, the emulator's own rule). See
//     checkFolderName in validate.go for the leads from other protocols
//     that were not adopted.
//   - importMime (beta) takes Content-Type text/plain and a body that is
//     only the base64 MIME, no JSON envelope or parameters; it answers 201
//     with a message whose isDraft is false, "as if it was delivered", and
//     keeps the full MIME (GET .../$value returns it byte for byte)
//     (https://learn.microsoft.com/graph/api/mailfolder-importmime?view=graph-rest-beta).
//   - POST .../messages with text/plain base64 MIME always makes a draft;
//     bad base64 answers 400 ErrorMimeContentInvalidBase64String
//     (https://learn.microsoft.com/graph/api/user-post-messages). MIME
//     that RejectMIME matches answers 400 ErrorMimeContentInvalid
//     (https://learn.microsoft.com/exchange/client-developer/web-service-reference/responsecode).
//     No other MIME is refused: no page says which MIME Exchange refuses,
//     so the emulator takes any (a header read as mail readers do, see
//     readMIMEBody) rather than be stricter than the service.
//   - Dates of MIME imports: sentDateTime is the Date header;
//     receivedDateTime is the time of import. No Microsoft page says how
//     importMime sets receivedDateTime and importMime takes no parameter
//     for it; the create-message MIME example answers receivedDateTime =
//     creation time, and EML uploads to Exchange Online are reported to show
//     the upload time (https://github.com/thunderbird/import-export-tools-ng/issues/237).
//   - Content of MIME imports (importMime and the MIME create), read as
//     MS-OXCMAIL 2.2.3 and MS-OXOSMIME 2.1.3 say (see readMIMEContent):
//     body is the first entity that qualifies, text/html (contentType html)
//     before text/plain (text), transfer encoding and charset decoded
//     (https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmail/454b1afc-4eaf-48a6-b49e-ec8c5a5ebe6a);
//     internetMessageHeaders are the MIME's header fields, in order,
//     unfolded (https://learn.microsoft.com/graph/api/resources/message);
//     the other parts are attachments: message/rfc822 an itemAttachment
//     (MS-OXCMAIL 2.2.3.4.3; $value is its MIME, $expand=…/item the message,
//     https://learn.microsoft.com/graph/api/attachment-get), anything else
//     a fileAttachment; isInline by MS-OXCMAIL 2.2.3.4.1.4.1 (an image in
//     multipart/related with a Content-ID or Content-Location the HTML
//     body references,
//     https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmail/35b0a1ea-56b4-4bff-b9df-0c35c883a22b);
//     a clear-signed message shows one attachment, smime.p7m (reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/4585),
//     an encrypted one no body. GET .../$value still returns the MIME as
//     imported, whatever is done to the attachments since. The emulator's
//     own choices (names of unnamed parts, charsets, nesting depth) are
//     in mimecontent.go.
//   - bodyPreview is "the first 255 characters of the message body in
//     text format" (https://learn.microsoft.com/graph/api/resources/message):
//     HTML read as text, white space collapsed, trimmed, 255 code points
//     (the emulator's rule, see bodyPreview). A message without a body
//     shows an empty text one.
//   - PidTagMessageFlags (Integer 0x0E07) reads as mfRead (0x1) when
//     isRead, mfUnsent (0x8) when isDraft, mfHasAttach (0x10) when
//     hasAttachments, on every message, the other flags as the creation set
//     them (MS-OXCMSG 2.2.1.6,
//     https://learn.microsoft.com/openspecs/exchange_server_protocols/ms-oxcmsg/a0c52fe2-3014-43a7-942d-f43f6f91c366;
//     see message.messageFlags), through $expand and $filter alike.
//   - A JSON create takes subject, body (text or html), from, sender,
//     toRecipients, ccRecipients, bccRecipients, replyTo, importance,
//     isRead, flag, categories, inferenceClassification, internetMessageId,
//     internetMessageHeaders, attachments (fileAttachment) and
//     singleValueExtendedProperties
//     (https://learn.microsoft.com/graph/api/user-post-messages,
//     https://learn.microsoft.com/graph/api/resources/message). It is a
//     draft unless Integer 0x0E07 (PidTagMessageFlags) is set without
//     MSGFLAG_UNSENT (0x8); MSGFLAG_READ (0x1) makes it read unless isRead
//     says otherwise; SystemTime 0x0E06 (PidTagMessageDeliveryTime) sets
//     receivedDateTime and SystemTime 0x0039 (PidTagClientSubmitTime)
//     sentDateTime (MS-OXCMSG, MS-OXPROPS; reported in
//     https://github.com/mguessan/davmail/pull/517, which also reports that
//     receivedDateTime and sentDateTime in the JSON are ignored, as here);
//     Integer 0x1081 (PidTagLastVerbExecuted: 102 reply, 103 reply all,
//     104 forward, MS-OXOMSG) shows as Message.LastVerbExecuted. Other
//     extended properties, such as Integer 0x1080 (PidTagIconIndex), are
//     stored verbatim without effect.
//   - internetMessageHeaders: "Add custom headers only when creating a
//     message, and name them starting with 'x-'"
//     (https://learn.microsoft.com/graph/api/resources/message); another
//     name answers 400 InvalidInternetMessageHeader "The internet message
//     header name '…' should start with 'x-' or 'X-'." (the code and text
//     clients quote). They are returned only with $select.
//   - GET .../$value of a JSON-created message is MIME built from its
//     properties (From, Sender, To, Cc, Reply-To, Subject, Date =
//     sentDateTime, Message-ID, Importance, the custom headers; the body;
//     multipart/mixed with base64 attachments when it has any), not bytes
//     Exchange would write.
//   - PATCH changes isRead, flag, categories, inferenceClassification,
//     importance, toRecipients,
//     ccRecipients and bccRecipients on any message, and subject, body,
//     from, sender, replyTo and internetMessageId on drafts
//     (https://learn.microsoft.com/graph/api/message-update). On a message
//     that is not a draft, subject and body are ignored (200; reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/21616),
//     from answers 400 ErrorInvalidPropertySet "Message is not draft."
//     (https://github.com/microsoftgraph/microsoft-graph-docs/issues/17008),
//     and so do sender and replyTo (the emulator's own rule);
//     internetMessageId answers 400 ErrorInvalidPropertySet "Set action is
//     invalid for property." (https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2408).
//     Read-only properties (createdDateTime, receivedDateTime, isDraft,
//     parentFolderId, changeKey, …) answer the same (see
//     readOnlyMessageProps in patch.go); id and @odata annotations are
//     taken without effect.
//   - flag: flagStatus, startDateTime, dueDateTime and completedDateTime
//     (https://learn.microsoft.com/graph/api/resources/followupflag), by
//     EWS's FlagType rules (MS-OXWSCORE 2.2.4.23): flagged takes a start
//     and a due date both or neither, complete no start or due date,
//     notFlagged no date; otherwise 400 ErrorInvalidArgument "The request
//     is invalid." (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6473).
//     See applyFlag in followup.go for the emulator's own choices.
//   - Every change of a message (create, PATCH, an attachment added or
//     removed) gives it a new changeKey and @odata.etag W/"changeKey",
//     never one of an earlier version. PATCH and DELETE honour If-Match:
//     an ETag that is not the current one answers 412 ErrorIrresolvableConflict
//     "The send or update operation could not be performed because the
//     change key passed in the request does not match the current change
//     key for the item." (https://github.com/mguessan/davmail/issues/491,
//     https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/1201);
//     If-Match: * always matches.
//     Extended properties are stored, except that 0x0E07, 0x0E06 and 0x0039
//     keep their creation value and change nothing (200 all the same):
//     PidTagMessageFlags is read-only after the first save (MS-OXCMSG),
//     and no page documents that the dates move. Whether a tenant lets a
//     PATCH of 0x0E06 move a delivered message's receivedDateTime is
//     undocumented: Options.HonourDeliveryTimePatch, the emulator's own
//     switch, makes it do so. internetMessageHeaders are checked and
//     ignored.
//   - Attachments (https://learn.microsoft.com/graph/outlook-large-attachments):
//     POST .../attachments takes a #microsoft.graph.fileAttachment (name,
//     contentBytes, contentType, isInline, contentId) under 3 MB, which the
//     4 MB request limit enforces, and answers 201
//     (https://learn.microsoft.com/graph/api/message-post-attachments).
//     createUploadSession takes {"AttachmentItem": {"attachmentType":
//     "file", "name", "size", …}} for 3 MB and more (smaller: 400
//     ErrorAttachmentSizeShouldNotBeLessThanMinimumSize) and answers 201
//     {uploadUrl, expirationDateTime, nextExpectedRanges: ["0-"]}
//     (https://learn.microsoft.com/graph/api/attachment-createuploadsession).
//     The uploadUrl is an opaque, pre-authenticated URL on the emulator,
//     /api/v2.0/Users('…')/Messages('…')/AttachmentSessions('…')?authtoken=…,
//     called without Authorization (a bearer token answers 401
//     InvalidAudience, https://github.com/microsoftgraph/msgraph-sdk-java-core/issues/445).
//     PUT "Content-Range: bytes a-b/total", in order, at most 4 MB (else
//     413): 200 {nextExpectedRanges: ["{next}"]}, then 201 with a Location
//     header .../Attachments('{id}') and no body on the last; a range that
//     is not the next one answers 416 InvalidRange (the emulator's code).
//     DELETE cancels (204); GET tells where to resume. Upload PUTs count
//     as requests and upload bytes of the mailbox's budgets.
//   - The maximum message size (Options.MaxMessageBytes; Exchange Online's
//     default is 35 MB, up to 150 MB when raised, attachment-createuploadsession)
//     covers body and attachments; beyond it, adding an attachment
//     answers 400 ErrorMessageSizeExceeded "The message exceeds the
//     maximum supported size." (reported in
//     https://github.com/microsoftgraph/microsoft-graph-docs/issues/15579),
//     for an upload session on the PUT that crosses the limit.
//   - hasAttachments ignores inline attachments
//     (https://learn.microsoft.com/graph/api/resources/message).
//   - Unknown folder or message ids answer 404 ErrorItemNotFound.
//   - $filter supports internetMessageId eq '<…>'
//     (https://learn.microsoft.com/graph/api/resources/message) and
//     singleValueExtendedProperties/Any(ep: ep/id eq '…' and ep/value eq '…');
//     $expand=singleValueExtendedProperties($filter=id eq '…') returns
//     properties. The Name in a property id is case-sensitive, values are
//     not (https://learn.microsoft.com/graph/api/singlevaluelegacyextendedproperty-get);
//     the rest of an id matches in any case and with or without leading
//     zeros. Answers spell ids as Graph does, whatever the spelling they
//     were created with: "Integer 0xe07", "String {guid in lower case}
//     Name X-Foo", "Integer {guid} Id 0x8570" (see canonicalPropID).
//   - Every JSON answer of an entity or a collection carries
//     @odata.context: a collection the path read, keys in parentheses
//     ("…/$metadata#users('{user}')/mailFolders('{id}')/messages",
//     https://learn.microsoft.com/graph/api/user-list-messages); an entity,
//     read, PATCHed or created by a POST to a collection, its collection's
//     path and /$entity (https://learn.microsoft.com/graph/api/attachment-get,
//     https://learn.microsoft.com/graph/api/user-post-messages); $select on
//     GET as "messages(subject,id)" or "messages(internetMessageHeaders)/$entity"
//     (https://learn.microsoft.com/graph/api/message-get); $expand changes
//     nothing; keys are OData string literals, percent-encoded
//     (users('john.doe%40contoso.onmicrosoft.com'),
//     https://learn.microsoft.com/graph/traverse-the-graph). An expanded
//     item of an itemAttachment has its item@odata.context
//     (…/attachments('{id}')/microsoft.graph.itemAttachment/item/$entity,
//     attachment-get example 3). Errors, $value and the $batch envelope
//     carry none; $batch responses carry their own.
//   - inferenceClassification is focused or other, in any case; a JSON
//     create and PATCH set it, on any message
//     (https://learn.microsoft.com/graph/api/message-update); a message is
//     "focused" until then, as Microsoft's answers show a new draft
//     (https://learn.microsoft.com/graph/api/user-post-messages?view=graph-rest-beta).
//     $select and $filter take it.
//   - GET of a mailFolder honours $select, as GET of a message does.
//     $expand of an itemAttachment's item is only
//     microsoft.graph.itemAttachment/item (attachment-get, example 3);
//     "item" alone answers 400.
//   - Collections page by $top (default 10) with @odata.nextLink
//     (https://learn.microsoft.com/graph/paging). Messages come in creation
//     order unless $orderby sorts them; on messages, $orderby's properties
//     must come first in $filter, in the same order, else 400
//     InefficientFilter "The restriction or sort order is too complex for
//     this operation." (https://learn.microsoft.com/graph/api/user-list-messages).
//   - Query options are checked as Graph checks them (query.go): a
//     property that does not exist, in $filter, $select, $expand or
//     $orderby, answers 400 RequestBroker--ParseUri "Could not find a
//     property named 'x' on type 'microsoft.graph.message'." rather than an
//     empty list (reported in https://github.com/wslyvh/paperweight/issues/1
//     and https://github.com/mguessan/davmail/issues/451); $top must be a
//     positive integer, at most 1000 on messages
//     (https://learn.microsoft.com/graph/api/mailfolder-list-messages), else
//     400; an option given twice answers 400 "Query option '$top' was
//     specified more than once, but it must be specified at most once."
//     (https://github.com/microsoftgraph/msgraph-sdk-php/issues/127); an
//     unknown system option answers 400 (MS-ODATA 2.2.3.6.1); option names
//     are case-insensitive and the $ may be left out
//     (https://learn.microsoft.com/graph/query-parameters). What Graph
//     has but the emulator does not evaluate ($search, properties that
//     fields.go does not read, casts) answers 501 NotImplemented, never a
//     silent empty answer.
//   - A full mailbox (SetQuotaExceeded) answers every write 403
//     ErrorQuotaExceeded "Mailbox has exceeded maximum mailbox size."
//     (https://github.com/microsoftgraph/microsoft-graph-docs-contrib/issues/6596).
//   - Throttling per app per mailbox (Options.Budget, DefaultBudget):
//     4 concurrent requests, 10,000 requests per 10 minutes, 150 MB of
//     POST/PATCH/PUT per 5 minutes; beyond, 429 ApplicationThrottled with
//     Retry-After seconds; concurrency reads "Application is over its
//     MailboxConcurrency limit." (https://learn.microsoft.com/graph/throttling-limits,
//     https://learn.microsoft.com/graph/throttling). Windows slide (see
//     admit in throttle.go for why); Retry-After is when the window has
//     room again, in whole seconds, at least 1. Options.TimeScale divides
//     the windows (RequestWindow, UploadWindow) and so Retry-After;
//     Options.Now replaces the clock they are measured on, so that a
//     test can move time rather than wait for it;
//     Options.Latency holds each request so that concurrency can be
//     exceeded. Throttled requests are counted in Stats.Requests,
//     Stats.Throttled and Stats.ThrottledBy, but do not use up a budget.
//   - $batch takes at most 20 requests, ids unique (not case-sensitive:
//     400 "Request Id {id} has to be unique in a batch."), a body and a
//     Content-Type on each POST, PUT and PATCH (400 "Write request id : {id}
//     does not contain Content-Type header or body."), and dependsOn naming
//     only earlier requests (400 "Invalid dependency for request Id {id}.");
//     a batch that breaks a rule fails whole and nothing in it runs
//     (https://learn.microsoft.com/graph/json-batching; the texts as
//     reported in https://github.com/microsoftgraph/msgraph-sdk-java/issues/559,
//     https://github.com/microsoftgraph/msgraph-sdk-dotnet/issues/2628 and
//     https://github.com/microsoftgraph/msgraph-sdk-dotnet-core/issues/891).
//     Each sub-request goes through the same handler, one at a time, counts
//     against the mailbox's budgets and may be throttled on its own while
//     the envelope answers 200; a request that depends on a failed one
//     answers 424; non-JSON bodies are base64.
//
// Fault injection: FailNext answers the next n requests with a status
// (429 carries ApplicationThrottled; Retry-After in whole seconds, rounded
// up); ResetNext closes the next n connections without a response;
// FailNextUpload fails the next PUTs to upload sessions (a status, or the
// connection closed before or after the bytes are stored); RejectMIME
// refuses chosen MIME; SetQuotaExceeded fills a mailbox.
//
// Not emulated: reference attachments, item attachments other than the
// attached messages of MIME imports, the body conversion that the header
// Prefer: outlook.body-content-type asks for, uniqueBody, events, the
// expiry of upload sessions, folder update/delete, move/copy, delta
// queries, $search (501), and the "me" alias.
//
// # The emulator's own rules
//
// Where Microsoft documents nothing and no reliable report says what
// Graph does, the emulator decides. A vendor testing against it should
// know these choices, which a real tenant may not share
// (TestGraphExamples in package exchange, run against a tenant, shows
// where they differ):
//
//   - Routing: a path under an unknown version answers 400 "Invalid
//     version." as one without a version does; paths Graph has but the
//     emulator does not (/users/{u}, /me, events, …) and segments after a
//     complete route answer 400 "Resource not found for the segment '…'.",
//     naming the first one; the token is checked before the route, so an
//     unknown path without a token answers 401; $value must be lower case.
//   - $batch: over 20 requests, a request without an id, method or url,
//     a GET or DELETE with a body but no Content-Type, and a payload that
//     does not parse answer 400 with the emulator's texts; "body": null is
//     no body; "requests": [] answers 200 with no responses; the rules are
//     checked request by request in the order id, duplicate, method and
//     url, dependsOn, body; an absolute sub-request URL is routed by its
//     path (reports disagree on what Graph does); a failed dependency's 424
//     carries BadRequest "The request depends on a request that failed.".
//   - Query options: $top=0 answers 400 (Graph is reported to take it on
//     messages); $top over 1000 on messages answers 400 with the
//     emulator's text; folder and attachment pages are capped at 1000 with
//     @odata.nextLink; an unknown $option answers 400 "The query parameter
//     '$foo' is not supported."; $filter, $orderby, $top, $skip, $count or
//     $search on a single entity answer 400; the 400s are checked in the
//     order $select, $expand, $filter, $orderby, $top, $skip, $count, and a
//     501 comes only when no 400 does; sorting is stable, strings compare
//     case-insensitively, null first, dates to the second; the schema is
//     v1.0's plus the message's beta-only properties.
//   - ETags and PATCH: If-Match compares the change key inside W/"…", so
//     W/"k", "k" and k match alike; DELETE honours If-Match as PATCH does;
//     If-Match is checked before the body; every successful PATCH is a new
//     version, even one that changes nothing; a flag in a PATCH replaces
//     the whole flag, and one without flagStatus is checked against the
//     current status; complete without completedDateTime completes now, to
//     the minute; dates with an offset or Z become UTC, others keep their
//     time zone unconverted; null recipients clear them; sender and
//     replyTo on a delivered message answer as from does; every listed
//     read-only property answers 400.
//   - @odata.context is rooted at the emulator's own URL and the
//     request's version ("http://127.0.0.1:port/v1.0/$metadata#…"), as
//     Graph's is at its own, like @odata.nextLink; the user and keys are
//     spelled as the request spelled them; importMime answers
//     "…/$metadata#message", as the documented message actions do
//     (https://learn.microsoft.com/graph/api/message-move). A bad
//     inferenceClassification answers 400 RequestBodyRead "Requested value
//     '…' was not found.".
//   - Extended-property ids in none of the three documented forms are
//     returned as given; Message.ExtendedProperties keys them as the client
//     spelled them.
//   - MIME content: headers are read leniently (an mbox From line
//     skipped, stray lines dropped); no Content-Type means text/plain; a
//     missing closing boundary ends the part at the end of the message;
//     nesting deeper than 32 levels is read as nothing; base64 is decoded
//     leniently; only UTF-8, ISO-8859-1 and windows-1252 are converted
//     (other bytes become U+FFFD); text/enriched and text/calendar become
//     attachments; unnamed attachments are ATT00001… (.txt, .htm, .bin);
//     an inline part must be referenced from the HTML body; only mfRead,
//     mfUnsent and mfHasAttach of PidTagMessageFlags are computed;
//     bodyPreview reads HTML as text (head, style, script and comments
//     dropped, entities decoded) and keeps 255 code points; the size
//     counted against the message limit is body plus attachments.
package exchangetest
