from mgattest.cli.app import main

main()
