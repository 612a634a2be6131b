module ci.local/registrator

go 1.22
