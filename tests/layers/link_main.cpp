// Linked with one layer whole (every object of its archive) and the layers below it alone: a call
// from that layer to a layer above leaves an undefined symbol and the link fails (tests/CMakeLists.txt).
int main() { return 0; }
