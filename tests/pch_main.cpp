// The target that builds the test programs' precompiled headers.
int main() { return 0; }
