from bus.children import watch_parent

watch_parent()  # a child of `dematbus up` (or of the bench) does not outlive it

from bus.cli import main  # noqa: E402

main()
