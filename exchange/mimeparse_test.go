package exchange

import (
	"io"
	"slices"
	"strings"
	"testing"
)

func TestParseMIMENames(t *testing.T) {
	raw := "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n" +
		"--b\r\nContent-Type: text/plain; name=\"=?utf-8?q?r=C3=A9sum=C3=A9.txt?=\"\r\nContent-Disposition: attachment\r\n\r\nx\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nbody\r\n" +
		"--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename*=utf-8''na%C3%AFve.bin\r\n\r\nzz\r\n--b--\r\n"
	p, err := parseMIME(strings.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	defer p.close()
	var names []string
	for _, a := range p.atts {
		names = append(names, a.name)
	}
	if p.body != "hi" || !slices.Equal(names, []string{"résumé.txt", "part3.eml", "naïve.bin"}) {
		t.Errorf("body %q, attachments %q", p.body, names)
	}
	b, _ := io.ReadAll(io.NewSectionReader(p.open(p.atts[1]), 0, p.atts[1].size))
	if string(b) != "Subject: inner\r\n\r\nbody" {
		t.Errorf("nested message %q", b)
	}
}
