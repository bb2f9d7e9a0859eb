from ichfed.cli import main

main()
