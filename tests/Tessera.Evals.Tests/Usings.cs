global using Tessera.Model.Tests;
