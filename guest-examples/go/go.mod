module example.com/observe-guest

go 1.21
