package exchangetest_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mailferry/mailferry/exchange/exchangetest"
)

// Example imports one message with importMime, as a Graph client would,
// and inspects the mailbox.
func Example() {
	s := exchangetest.NewServer(nil)
	defer s.Close()
	s.AddMailbox("alice@contoso.com")

	raw := "From: bob@example.com\r\nSubject: Hello\r\nMessage-ID: <1@example.com>\r\n" +
		"Date: Tue, 02 Jan 2024 03:04:05 +0000\r\n\r\nHi!\r\n"
	req, _ := http.NewRequest("POST", s.URL()+"/beta/users/alice@contoso.com/mailFolders/inbox/importMime",
		strings.NewReader(base64.StdEncoding.EncodeToString([]byte(raw))))
	req.Header.Set("Authorization", "Bearer any-token")
	req.Header.Set("Content-Type", "text/plain")
	res, err := s.Client().Do(req)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	var msg struct {
		Subject      string `json:"subject"`
		IsDraft      bool   `json:"isDraft"`
		SentDateTime string `json:"sentDateTime"`
	}
	_ = json.NewDecoder(res.Body).Decode(&msg)
	fmt.Println(res.StatusCode, msg.Subject, msg.IsDraft, msg.SentDateTime)

	for _, m := range s.Messages("alice@contoso.com") {
		fmt.Println(m.InternetMessageID, string(m.MIME) == raw)
	}
	// Output:
	// 201 Hello false 2024-01-02T03:04:05Z
	// <1@example.com> true
}

// ExampleServer_FailNext makes the next request answer 429 with Retry-After.
func ExampleServer_FailNext() {
	s := exchangetest.NewServer(&exchangetest.Options{Token: "t0k3n"})
	defer s.Close()
	s.AddMailbox("alice@contoso.com")
	s.FailNext(1, http.StatusTooManyRequests, 2*time.Second)

	for range 2 {
		req, _ := http.NewRequest("GET", s.URL()+"/v1.0/users/alice@contoso.com/mailFolders/inbox", nil)
		req.Header.Set("Authorization", "Bearer t0k3n")
		res, err := s.Client().Do(req)
		if err != nil {
			panic(err)
		}
		res.Body.Close()
		fmt.Printf("%d Retry-After=%q\n", res.StatusCode, res.Header.Get("Retry-After"))
	}
	fmt.Println(s.Stats().Throttled)
	// Output:
	// 429 Retry-After="2"
	// 200 Retry-After=""
	// 1
}
