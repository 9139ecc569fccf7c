from . import main

print(main())
