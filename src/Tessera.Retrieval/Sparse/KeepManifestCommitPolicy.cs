using Lucene.Net.Index;

namespace Tessera.Retrieval.Sparse;

/// <summary>
/// Keeps two Lucene commits per shard: the newest, and the one the index manifest vouches for.
/// Lucene's default keeps only the newest, which would delete the manifest's commit as soon as a
/// build commits a shard; a build that then dies before the manifest is rewritten would leave
/// shards that no longer match each other. With this policy the previous good state stays
/// readable until a new manifest names the new commits.
/// </summary>
sealed class KeepManifestCommitPolicy(long protectedGeneration) : IndexDeletionPolicy
{
    public override void OnInit<T>(IList<T> commits) => Prune(commits);

    public override void OnCommit<T>(IList<T> commits) => Prune(commits);

    void Prune<T>(IList<T> commits) where T : IndexCommit
    {
        if (commits.Count == 0) return;
        long newest = commits.Max(c => c.Generation);
        foreach (var c in commits)
            if (c.Generation != newest && c.Generation != protectedGeneration) c.Delete();
    }
}
