module github.com/nanoclaw/nanoclaw

go 1.26.0

require (
	github.com/ncruces/go-sqlite3 v0.37.0
	lukechampine.com/adiantum v1.1.1
)

require (
	github.com/modelcontextprotocol/go-sdk v1.8.0 // indirect
	github.com/ncruces/go-sqlite3-wasm/v6 v6.5.35401 // indirect
	github.com/ncruces/julianday v1.0.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
)
