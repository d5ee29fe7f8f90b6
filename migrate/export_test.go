package migrate

// FlagBatch is how many flag changes go to a BatchFlagSetter at once.
const FlagBatch = flagBatch
