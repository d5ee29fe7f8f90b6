package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// adfs is a Microsoft Entra token endpoint for the client credentials
// grant, as an AD FS authority (azidentity's tenant "adfs", which skips
// instance discovery): the OpenID configuration, and a token endpoint
// whose answers a grant function decides.
type adfs struct{ srv *httptest.Server }

// adfsRefusal is why Entra refuses a token request: an AADSTS error code
// and its description, answered as 401 invalid_client.
type adfsRefusal struct {
	code int
	desc string
}

// startADFS starts the service. grant is called with each token request
// (its form parsed) and the token endpoint's URL, the audience of a
// client assertion; it returns the bearer token to give, or why the
// request is refused.
func startADFS(t *testing.T, grant func(r *http.Request, tokenURL string) (string, *adfsRefusal)) *adfs {
	a := &adfs{}
	a.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		base := "https://" + r.Host + "/adfs"
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/adfs/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{
				"authorization_endpoint": base + "/oauth2/authorize", "token_endpoint": base + "/oauth2/token", "issuer": base,
			})
		case "/adfs/oauth2/token":
			r.ParseForm()
			bearer, refused := grant(r, base+"/oauth2/token")
			if refused != nil {
				w.WriteHeader(http.StatusUnauthorized)
				json.NewEncoder(w).Encode(map[string]any{"error": "invalid_client",
					"error_description": refused.desc, "error_codes": []int{refused.code}})
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"access_token": bearer, "token_type": "Bearer", "expires_in": 3600})
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(a.srv.Close)
	return a
}

// env is what a child process needs to use the service: its authority
// and, as SSL_CERT_FILE, its certificate written to a PEM file.
func (a *adfs) env(t *testing.T) []string {
	path := filepath.Join(t.TempDir(), "adfs.pem")
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: a.srv.Certificate().Raw})
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"AZURE_AUTHORITY_HOST=" + a.srv.URL, "SSL_CERT_FILE=" + path}
}
