module example.com/authsvc/clients/go

go 1.19
